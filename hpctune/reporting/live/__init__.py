"""The live view of a running experiment: its state read from the experiment folder or the
controller (:mod:`.state`), drawn as a table or plain lines (:mod:`.render`), on the coordinator's
console (:mod:`.console`) and in ``hpctune status --watch`` (:mod:`.watch`)."""

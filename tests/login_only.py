"""A trainable whose module imports on the node hpctune is started on, not where trials run (a
module missing from the compute nodes' environment): trial processes set HPCTUNE_TRIAL_PROCESS."""
import importlib
import os

if os.environ.get("HPCTUNE_TRIAL_PROCESS"):
    importlib.import_module("a_module_only_the_login_node_has")


def train(config):
    import hpctune

    hpctune.report({"loss": 1.0})

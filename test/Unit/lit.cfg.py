# -*- Python -*-
# Runs the GoogleTest unit tests through lit, one lit test per TEST.

import os

import lit.formats

config.name = "HYBRID-Unit"
config.suffixes = []
config.test_source_root = os.path.join(config.hybrid_obj_root, "unittests")
config.test_exec_root = config.test_source_root
config.test_format = lit.formats.GoogleTest(".", "Tests")

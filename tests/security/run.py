"""`make security`: the attacks of issue 11 at the sizes of the original
report (PP_SECURITY_FULL=1: 1,000 slowloris connections for 20 s, a 300 MB
bus frame, 100 unauthenticated 8 MiB bodies, 1,100 bus connections), plus the
hostile-path probes of test_http. A few minutes; loopback only; every flood
is bounded and stops by itself. Prints the well-behaved client's success rate
and latency and the daemon's peak RSS for each attack, and one closing line
'security: N passed, N failed'. The short form (smaller floods) runs in
`make check` as part of the integration tests."""
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
integration = os.path.join(here, "..", "integration")
sys.path.insert(0, integration)
os.environ["PP_SECURITY_FULL"] = "1"

loader = unittest.defaultTestLoader
suite = unittest.TestSuite()
suite.addTests(loader.discover(integration, pattern="test_security.py", top_level_dir=integration))
suite.addTests(loader.loadTestsFromName("test_http.HttpTest.test_hostile_paths_answer_400_or_404"))
result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
failed = len(result.failures) + len(result.errors)
passed = result.testsRun - failed - len(result.skipped)
print("security: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed or result.testsRun == 0 else 0)

# Runs after the SIPp instances, also when the test failed.
echo "call test {{ test.run_id }} done"

# Runs in the test's run folder before its SIPp instances start.
echo "call from {{ ua1.host }} to {{ ua0.host }} through {{ dut.host }} (run {{ test.run_id }})"

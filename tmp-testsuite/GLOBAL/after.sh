# Runs once after the last group, also after an interrupt: undo before.sh.
echo "removing the example suite's provisioning from {{ dut.host }}"

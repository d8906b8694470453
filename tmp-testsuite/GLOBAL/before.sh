# Runs once before the first group: provision the DUT here (e.g. through its API).
echo "provisioning {{ dut.host }} for the example suite"

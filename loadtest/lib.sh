# What the load-test scripts share; sourced, not run.

# Waits until `url` answers 2xx.
wait_http() { until curl -fsS -o /dev/null "$1"; do sleep 0.2; done; }

# A process's CPU time so far (user + system), in clock ticks (`getconf CLK_TCK` a second).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

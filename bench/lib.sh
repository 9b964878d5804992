# bench/lib.sh - what the bench scripts share (sourced, from the repository root):
#   port_of LOG MARKER   the port a child logged after MARKER (waits up to 5 s for the line)
#   free_port            a free loopback port
#   median               the median of the numbers on stdin
#   cpu_ticks PID        user + system clock ticks the process has used; tick_hz per second
#   start_canned DIR     nginx answering a canned completion (bench/canned.conf), in the
#                        background, its files in DIR; its port in $canned
port_of() { for _ in $(seq 100); do grep -q "$2" "$1" && break; sleep 0.05; done; sed -n "s/.*$2127.0.0.1:\([0-9]*\).*/\1/p" "$1" | head -1; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
tick_hz=$(getconf CLK_TCK)
start_canned() {
    canned=$(free_port)
    sed -e "s#@DIR@#$1#g" -e "s#@PORT@#$canned#g" bench/canned.conf >"$1/canned.conf"
    nginx -c "$1/canned.conf" -p "$1" &
}

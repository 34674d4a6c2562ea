#!/bin/bash
# roboact demos --suite metaworld -n 5 --workers 2 -o OUT; SIGTERM to the command after 15 s
PY=/work/main/.venv/bin/python
$PY -m roboact.cli demos --suite metaworld -n 5 --workers 2 -o OUT > run.log 2>&1 &
P=$!
sleep 15
TREE=$($PY -c "from roboact.utils.shutdown import descendants; print(' '.join(map(str, descendants($P))))")
echo "command pid $P; its tree after 15 s:"
for p in $TREE; do echo "  $p $(tr '\0' ' ' < /proc/$p/cmdline | cut -c1-110)"; done
T0=$(date +%s.%N); kill -TERM $P; wait $P; RC=$?; T1=$(date +%s.%N)
echo "exit status $RC, $(python3 -c "print(round($T1-$T0,2))") s after SIGTERM"
sleep 3
echo "3 s later, alive of that tree:"; N=0
for p in $TREE; do if [ -e /proc/$p ] && ! grep -q '^[^)]*) Z' /proc/$p/stat; then echo "  $p"; N=$((N+1)); fi; done
echo "  $N processes"
echo "temporary files left under OUT: $(find OUT -name '.*tmp*' | wc -l)"
echo "the command's last line:"; tail -c 400 run.log | tr '\r' '\n' | tail -1
echo "files under OUT: $(find OUT -type f | wc -l); finished demo files: $(ls OUT/metaworld/*_demo.hdf5 2>/dev/null | wc -l)"

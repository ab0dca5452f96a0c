# plot.gp - ack latency (p50, p99; log scale) against achieved throughput, open-loop sweep
# of bench/sweep.sh, flushout-hub vs the Node peer.
#   gnuplot -e "dir='build/bench'" bench/plot.gp          -> build/bench/latency.svg
#   gnuplot -e "dir='build/bench'; fmt='png'" bench/plot.gp -> build/bench/latency.png
# Reads DIR/sweep-hub.dat and DIR/sweep-peer.dat (columns: target rate, achieved flushes/s,
# ack p50, p90, p99, p99.9 ms, errors, server CPU %).
if (!exists("dir")) dir = 'build/bench'
if (!exists("fmt")) fmt = 'svg'
if (fmt eq 'png') {
    set terminal pngcairo size 1000,620 font 'sans,11'
} else {
    set terminal svg size 1000,620 dynamic font 'sans,13' background '#ffffff'
}
set output dir.'/latency.'.fmt

set title "Ack latency vs throughput, open loop (100 connections, 10 models, K=1; server on 1 core)"
set xlabel "achieved flushes/s"
set ylabel "ack latency (ms, from intended send time)"
set logscale x
set logscale y
set format x "%.0s%c"
set format y "%g"
set grid xtics ytics mxtics mytics lc rgb '#dddddd' lw 1
set key top left box opaque
set datafile missing 'NaN'

hub = dir.'/sweep-hub.dat'
peer = dir.'/sweep-peer.dat'
plot hub  using 2:5 with linespoints lw 2 pt 7 ps 0.8 lc rgb '#1f77b4' title 'flushout-hub p99', \
     hub  using 2:3 with linespoints lw 2 pt 6 ps 0.8 dt 2 lc rgb '#1f77b4' title 'flushout-hub p50', \
     peer using 2:5 with linespoints lw 2 pt 5 ps 0.8 lc rgb '#d62728' title 'Node peer p99', \
     peer using 2:3 with linespoints lw 2 pt 4 ps 0.8 dt 2 lc rgb '#d62728' title 'Node peer p50'

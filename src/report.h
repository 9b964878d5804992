/* report.h - `keel audit`: per-model latency percentiles and failure counts from the audit log
 * (report.c). */
#ifndef KEEL_REPORT_H
#define KEEL_REPORT_H

/* argv as main got it (argv[1] == "audit"); returns the exit code */
int keel_report_run(int argc, char **argv);

#endif

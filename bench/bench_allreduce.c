/* bench_allreduce [MAX_MIB]: MPI_Allreduce (sum of floats, in place, as kd's
 * gradient buckets) from 4 bytes to MAX_MIB (default 16) MiB, over whatever
 * transport mpirun chose. Per size: microseconds per call (the slowest rank's
 * mean over >= 0.2 s of calls), algorithm bandwidth (bytes / t) and bus
 * bandwidth (2 (p - 1) / p * bytes / t: what a ring moves per link, the
 * figure bench/project.py's model takes). Last line: alpha (the smallest
 * size's time / (2 (p - 1)), a ring's per-hop latency) and the bus bandwidth
 * of the largest size. Prints; asserts nothing. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static double time_one(float *buf, int n, MPI_Comm comm) {
  for (int i = 0; i < 3; i++) MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, comm);
  int iters = 1;
  double t = 0;
  for (;;) { /* every rank runs the same count: the slowest rank's time decides */
    MPI_Barrier(comm);
    const double t0 = MPI_Wtime();
    for (int i = 0; i < iters; i++) MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, comm);
    double mine = MPI_Wtime() - t0;
    MPI_Allreduce(&mine, &t, 1, MPI_DOUBLE, MPI_MAX, comm);
    if (t >= 0.2 || iters >= 1 << 20) break;
    iters *= t > 0.02 ? 2 : 10;
  }
  return t / iters;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, p;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &p);
  const double max_mib = argc > 1 ? atof(argv[1]) : 16;
  const int max_n = (int)(max_mib * 1048576 / sizeof(float));
  float *buf = calloc((size_t)(max_n > 0 ? max_n : 1), sizeof *buf);
  if (!buf || max_n < 1) {
    if (rank == 0) fprintf(stderr, "bench_allreduce: %s\n", buf ? "MAX_MIB too small" : "out of memory");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (rank == 0) printf("%d ranks; %12s %12s %14s %14s\n", p, "bytes", "us", "algbw GB/s", "busbw GB/s");
  double first = 0, bus = 0;
  for (int n = 1; n <= max_n; n *= 4) {
    const double t = time_one(buf, n, MPI_COMM_WORLD), bytes = 4.0 * n;
    if (n == 1) first = t;
    bus = p > 1 ? 2.0 * (p - 1) / p * bytes / t / 1e9 : 0;
    if (rank == 0) printf("%-9s %12.0f %12.2f %14.3f %14.3f\n", "", bytes, t * 1e6, bytes / t / 1e9, bus);
  }
  if (rank == 0)
    printf("alpha_us=%.2f busbw_GBs=%.3f\n", p > 1 ? first * 1e6 / (2.0 * (p - 1)) : 0.0, bus);
  free(buf);
  MPI_Finalize();
  return 0;
}

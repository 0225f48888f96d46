#define _GNU_SOURCE
#include "train/stop.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t g_stop_signal = 0;
static struct sigaction g_old_term, g_old_usr1; /* one run at a time per process */

static void on_stop_signal(int sig) { g_stop_signal = sig; }

int tr_stop_signal(void) { return (int)g_stop_signal; }

void tr_stop_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  g_stop_signal = 0;
  sigaction(SIGTERM, &sa, &g_old_term);
  sigaction(SIGUSR1, &sa, &g_old_usr1);
}

void tr_stop_restore(void) {
  sigaction(SIGTERM, &g_old_term, NULL);
  sigaction(SIGUSR1, &g_old_usr1, NULL);
}

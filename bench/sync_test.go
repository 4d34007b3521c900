package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"followupd/config"
	"followupd/daemon"
)

// traceCounter counts the commands a daemon sends (from its IMAP trace).
type traceCounter struct {
	mu     sync.Mutex
	bytes  int64
	fetch  int
	search int
}

func (t *traceCounter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bytes += int64(len(p))
	t.fetch += bytes.Count(p, []byte(" UID FETCH "))
	t.search += bytes.Count(p, []byte(" UID SEARCH "))
	return len(p), nil
}

// runDaemon starts a daemon on cfg and returns how long it took to be
// ready, and a stop function.
func runDaemon(b testing.TB, cfg *config.Config, opt daemon.Options) (time.Duration, *daemon.Daemon, func()) {
	b.Helper()
	if opt.Logger == nil {
		opt.Logger = quietLogger()
	}
	t0 := time.Now()
	d, err := daemon.New(cfg, opt)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-done:
		b.Fatalf("daemon stopped before ready: %v", err)
	case <-time.After(15 * time.Minute):
		b.Fatal("daemon not ready after 15 minutes")
	}
	took := time.Since(t0)
	return took, d, func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("daemon: %v", err)
		}
		if err := d.Close(); err != nil {
			b.Errorf("closing daemon: %v", err)
		}
	}
}

// BenchmarkInitialSync: the first start of a daemon against one account
// whose Sent + INBOX hold syncMessages messages, against a bare client
// fetching the same fields of both folders (two connections in parallel,
// as the daemon), both on a warm Dovecot index. Then a restart with the
// mailboxes unchanged, which must fetch nothing.
func BenchmarkInitialSync(b *testing.B) {
	sc := getScale()
	w := startWorld(b, 1, "big", 0)
	user := w.users[0]
	seedBig(b, w, user, sc.syncMessages, time.Now())

	t0 := time.Now()
	if _, n, err := bareFetch(w, user, "INBOX", "Sent"); err != nil || n != sc.syncMessages {
		b.Fatalf("warm-up fetch: %d messages, %v", n, err)
	}
	index := time.Since(t0)
	b.Logf("Dovecot indexed %d messages (first bare fetch) in %v", sc.syncMessages, index)

	var bare, syncs []time.Duration
	var lastDir string
	b.ResetTimer()
	for range b.N {
		for i := range sc.syncRepeats {
			// Each measurement starts from a collected heap: the one
			// before does not leave it its garbage (same process).
			runtime.GC()
			c0 := processCPU()
			d, n, err := bareFetch(w, user, "INBOX", "Sent")
			if err != nil || n != sc.syncMessages {
				b.Fatalf("bare fetch: %d messages, %v", n, err)
			}
			bareCPU := processCPU() - c0
			bare = append(bare, d)
			dir := filepath.Join(b.TempDir(), fmt.Sprint("state", i))
			cfg, _ := w.config(b, dir, []string{user})
			runtime.GC()
			c0 = processCPU()
			took, dmn, stop := runDaemon(b, cfg, daemon.Options{})
			daemonCPU := processCPU() - c0
			counts, err := dmn.Store().Counts()
			if err != nil {
				b.Fatal(err)
			}
			stop()
			syncs = append(syncs, took)
			lastDir = dir
			b.Logf("run %d: bare %v (CPU %v), daemon %v (CPU %v) (follow-ups by state %v)", i, d, bareCPU.Round(time.Millisecond), took, daemonCPU.Round(time.Millisecond), counts)
		}
	}
	b.StopTimer()
	limit, got := median(bare), median(syncs)
	b.ReportMetric(got.Seconds(), "s/sync")
	b.ReportMetric(float64(sc.syncMessages)/got.Seconds(), "msgs/s")
	record(b, sc, row{
		Figure: fmt.Sprintf("initial sync, %d messages (Sent + INBOX)", sc.syncMessages),
		Value:  fmt.Sprintf("%s (%.0f msgs/s)", secs(got), float64(sc.syncMessages)/got.Seconds()),
		Limit:  fmt.Sprintf("%s bare UID FETCH 1:* of the same fields", secs(limit)),
		Ratio:  fmt.Sprintf("%.2f", got.Seconds()/limit.Seconds()), Target: "≤ 1.5 × limit",
		Verdict: verdict(got.Seconds() <= 1.5*limit.Seconds()),
		Notes: fmt.Sprintf("median of %d; daemon runs %v, bare %v; Dovecot index built in %s by a first untimed fetch; store on disk (fsync)",
			len(syncs), roundAll(syncs), roundAll(bare), secs(index)),
	})

	// Restart with nothing changed.
	cfg, _ := w.config(b, lastDir, []string{user})
	tc := &traceCounter{}
	took, _, stop := runDaemon(b, cfg, daemon.Options{IMAPDebug: tc})
	stop()
	bareSel := bareSelect(b, w, []string{user})
	record(b, sc, row{
		Figure: fmt.Sprintf("resync after restart, 1 account of %d messages, unchanged", sc.syncMessages),
		Value:  ms(took), Limit: ms(bareSel) + " bare login + SELECT of both folders",
		Ratio: fmt.Sprintf("%.2f", took.Seconds()/bareSel.Seconds()), Target: "< 1 s per 10 accounts",
		Verdict: verdict(took < time.Second),
		Notes:   fmt.Sprintf("%d UID FETCH, %d UID SEARCH sent; %d bytes of IMAP traffic", tc.fetch, tc.search, tc.bytes),
	})
	if tc.fetch != 0 {
		b.Errorf("resync of unchanged mailboxes sent %d UID FETCH", tc.fetch)
	}
	_ = os.Remove(lastDir)
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// bareSelect is the limit of a resync: every account's INBOX and Sent
// connected, logged in and selected (CONDSTORE), all in parallel.
func bareSelect(b testing.TB, w *mailWorld, users []string) time.Duration {
	b.Helper()
	t0 := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, u := range users {
		for _, f := range []string{"INBOX", "Sent"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := login(w, u, nil)
				if err == nil {
					_, err = c.Select(f, nil).Wait()
					c.Close()
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return time.Since(t0)
}

// processCPU is the user+system CPU time this process has used so far
// (the bare client and an in-process daemon each run alone in it).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

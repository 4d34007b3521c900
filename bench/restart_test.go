package bench

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"followupd/daemon"
	"followupd/message"
	"followupd/store"
)

// seedPending writes n waiting follow-ups spread over users into a new
// store at path, through store.Track (the daemon's own write path). It
// works on tmpfs when it can (fsync is free there) and copies the file.
func seedPending(b testing.TB, path string, users []string, n int) {
	b.Helper()
	t0 := time.Now()
	tmp := b.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "followupd-bench-"); err == nil {
			tmp = d
			b.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	db, err := store.Open(filepath.Join(tmp, "seed.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := range n {
		u := users[i%len(users)]
		f := &store.FollowUp{
			Account: u, MessageID: fmt.Sprintf("pending-%d@seller.test", i), Rule: "offer", Kind: "offer",
			Subject: fmt.Sprintf("Коммерческое предложение №%d", i),
			From:    message.Address{Addr: u},
			To:      []message.Address{{Addr: fmt.Sprintf("client%d@buyer%d.test", i%5000, i%700), Name: "Клиент"}},
			SentAt:  now.Add(-time.Hour), LastSent: now.Add(-time.Hour),
			State: store.StateWaiting, Step: 1,
			Due: now.Add(20*24*time.Hour + time.Duration(i%(30*24*60))*time.Minute),
		}
		if _, _, err := db.Track(f, now, "bench seed"); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		b.Fatal(err)
	}
	copyFile(b, filepath.Join(tmp, "seed.db"), path)
	b.Logf("seeded %d pending follow-ups in %v", n, time.Since(t0).Round(time.Millisecond))
}

func copyFile(b testing.TB, from, to string) {
	b.Helper()
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

// heapAfterReady runs a daemon on stateDir until ready and returns the
// live heap then (after two GCs), with the follow-ups the store holds.
func heapAfterReady(b testing.TB, w *mailWorld, stateDir string) (uint64, int) {
	b.Helper()
	cfg, _ := w.config(b, stateDir, w.users)
	_, d, stop := runDaemon(b, cfg, daemon.Options{})
	defer stop()
	counts, err := d.Store().Counts()
	if err != nil {
		b.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, counts[store.StateWaiting]
}

// BenchmarkPendingMemoryAndRestart: the daemon's heap per pending
// follow-up (heap at ready with n pending minus heap at ready with none,
// same accounts, ÷ n), and the followupd process from exec to systemd
// READY=1 with n follow-ups in bbolt and its accounts' mailboxes unchanged.
func BenchmarkPendingMemoryAndRestart(b *testing.B) {
	sc := getScale()
	w := startWorld(b, sc.restartAccts, "rst", 0)
	empty := filepath.Join(b.TempDir(), "empty")
	full := filepath.Join(b.TempDir(), "full")
	seedPending(b, filepath.Join(full, daemon.DBFile), w.users, sc.pending)

	b.ResetTimer()
	var perPending float64
	var h0, h1 uint64
	for range b.N {
		h0, _ = heapAfterReady(b, w, empty)
		var n int
		h1, n = heapAfterReady(b, w, full)
		if n != sc.pending {
			b.Fatalf("%d waiting follow-ups in the store, want %d", n, sc.pending)
		}
		perPending = (float64(h1) - float64(h0)) / float64(n)
	}
	b.StopTimer()
	b.ReportMetric(perPending, "B/pending")
	record(b, sc, row{
		Figure: fmt.Sprintf("memory per pending follow-up (%d pending)", sc.pending),
		Value:  fmt.Sprintf("%.0f B", perPending), Limit: "32 B (the wheel node alone)",
		Ratio: fmt.Sprintf("%.1f", perPending/32), Target: "< 1 KB", Verdict: verdict(perPending < 1024),
		Notes: fmt.Sprintf("live heap at ready: %.1f MB with none, %.1f MB with %d pending, %d accounts", float64(h0)/1e6, float64(h1)/1e6, sc.pending, len(w.users)),
	})

	// Restart to READY: the real binary, as systemd starts it.
	bin, err := buildOnce()
	if err != nil {
		b.Fatal(err)
	}
	_, cfgPath := w.config(b, full, w.users)
	first := execToReady(b, bin, cfgPath)
	var runs []time.Duration
	for range sc.repeats {
		runs = append(runs, execToReady(b, bin, cfgPath))
	}
	got := median(runs)
	lim := bareSelect(b, w, w.users)
	record(b, sc, row{
		Figure: fmt.Sprintf("restart to ready, %d follow-ups in bbolt, %d accounts", sc.pending, len(w.users)),
		Value:  ms(got), Limit: ms(lim) + " bare login + SELECT of every folder",
		Ratio: fmt.Sprintf("%.2f", got.Seconds()/lim.Seconds()), Target: "< 2 s", Verdict: verdict(got < 2*time.Second),
		Notes: fmt.Sprintf("exec → READY=1 on NOTIFY_SOCKET, median of %v; first start (initial sync of the small mailboxes) %s", roundAll(runs), ms(first)),
	})
}

// execToReady starts the binary with a NOTIFY_SOCKET and returns the time
// from exec to READY=1; then stops it with SIGTERM.
func execToReady(b testing.TB, bin, cfgPath string) time.Duration {
	b.Helper()
	sock := filepath.Join(b.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "run", "-config", cfgPath)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "BENCH_PW="+benchPW)
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ready := make(chan time.Duration, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				ready <- time.Since(t0)
				return
			}
		}
	}()
	var took time.Duration
	select {
	case took = <-ready:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("no READY=1 after 2 minutes; stderr:\n%s", tail(stderr.String(), 30))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("followupd run: %v; stderr:\n%s", err, tail(stderr.String(), 30))
	}
	return took
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

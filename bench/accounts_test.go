package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// TestMain lets the test binary double as the bare IDLE client of
// BenchmarkAccounts (BENCH_ROLE=bareidle), so its RSS and CPU are its own.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_ROLE") == "bareidle" {
		os.Exit(bareIdleMain())
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir) // the followupd binary buildOnce made
	}
	os.Exit(code)
}

// bareIdleMain idles on INBOX and Sent of BENCH_COUNT accounts
// (BENCH_PREFIX%04d@seller.test), prints READY when all are idling and
// "EXISTS user unixnano" for new mail, and exits when stdin closes.
func bareIdleMain() int {
	addr, pw, prefix := os.Getenv("BENCH_IMAP"), os.Getenv("BENCH_PW"), os.Getenv("BENCH_PREFIX")
	n, _ := strconv.Atoi(os.Getenv("BENCH_COUNT"))
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		fmt.Printf(format+"\n", args...)
		out.Unlock()
	}
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	var failed sync.Once
	code := 0
	for i := range n {
		user := fmt.Sprintf("%s%04d@seller.test", prefix, i)
		for _, f := range []string{"INBOX", "Sent"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				h := &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
					if d.NumMessages != nil {
						say("EXISTS %s %s %d", user, f, time.Now().UnixNano())
					}
				}}
				c, err := imapclient.DialInsecure(addr, &imapclient.Options{UnilateralDataHandler: h})
				if err == nil {
					err = c.Login(user, pw).Wait()
				}
				if err == nil {
					_, err = c.Select(f, nil).Wait()
				}
				if err == nil {
					_, err = c.Idle()
				}
				if err != nil {
					failed.Do(func() { code = 1; say("ERROR %s %s: %v", user, f, err) })
				}
			}()
		}
	}
	wg.Wait()
	say("READY")
	io.Copy(io.Discard, os.Stdin)
	return code
}

// BenchmarkAccounts: one followupd process watching accounts accounts
// (INBOX + Sent each: 2 IDLE connections per account) on one Dovecot, idle
// for scale.idle (BENCH_IDLE, default 5m in full runs): its RSS, its CPU
// while idle, and the time until a reply to the last account is answered.
// The limit is a bare go-imap process idling on the same folders in the
// same window on as many accounts of its own (its RSS, CPU, and EXISTS for
// the same delivery, sent to both last accounts in one transaction).
func BenchmarkAccounts(b *testing.B) {
	sc := getScale()
	w := startWorld(b, sc.accounts, "acct", benchConns(4*sc.accounts), "bare")
	last := w.users[len(w.users)-1]
	dir, err := w.s.Maildir(last, "Sent")
	if err != nil {
		b.Fatal(err)
	}
	const (
		offerID = "last-offer@seller.test"
		client  = "last-client@buyer.test"
	)
	subj := "Коммерческое предложение для последнего"
	if err := writeMaildir(dir, 0, [][]byte{offerMsg(last, offerID, subj, client, time.Now().Add(-time.Hour), 10)}, nil, "S"); err != nil {
		b.Fatal(err)
	}
	bin, err := buildOnce()
	if err != nil {
		b.Fatal(err)
	}
	state := filepath.Join(b.TempDir(), "state")
	_, cfgPath := w.config(b, state, w.users)

	// The daemon, as systemd runs it; its log goes to a file we tail.
	logPath := filepath.Join(state, "followupd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	sock := filepath.Join(b.TempDir(), "notify.sock")
	nconn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	defer nconn.Close()
	dcmd := exec.Command(bin, "run", "-config", cfgPath)
	dcmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "BENCH_PW="+benchPW)
	dcmd.Stderr = logf
	t0 := time.Now()
	if err := dcmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- dcmd.Wait() }()
	defer func() {
		// A stop that hangs is a finding, not a reason to hang the run:
		// after 30 s SIGQUIT makes the Go runtime dump every goroutine to
		// the log, whose tail is kept in the test log.
		dcmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return
		case <-time.After(30 * time.Second):
		}
		dcmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			dcmd.Process.Kill()
			<-exited
		}
		data, _ := os.ReadFile(logPath)
		b.Logf("DAEMON DID NOT STOP within 30 s of SIGTERM with %d accounts; goroutine dump (tail):\n%s", sc.accounts, tail(string(data), 200))
	}()
	readyCh := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := nconn.ReadFrom(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				close(readyCh)
				return
			}
		}
	}()
	select {
	case <-readyCh:
	case <-time.After(5 * time.Minute):
		logData, _ := os.ReadFile(logPath)
		b.Fatalf("daemon with %d accounts not ready after 5 minutes:\n%s", sc.accounts, tail(string(logData), 30))
	}
	dReady := time.Since(t0)
	// Sessions that failed on the way to READY (logins the server reset).
	logData, _ := os.ReadFile(logPath)
	reconnects := bytes.Count(logData, []byte("imap session ended, reconnecting"))

	// The bare client, a process of its own.
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	bcmd := exec.Command(self)
	bcmd.Env = append(os.Environ(), "BENCH_ROLE=bareidle", "BENCH_IMAP="+w.s.IMAPAddr, "BENCH_PW="+benchPW, "BENCH_PREFIX=bare", fmt.Sprint("BENCH_COUNT=", sc.accounts))
	stdin, err := bcmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := bcmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	if err := bcmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		bcmd.Wait()
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for l := range lines {
		if strings.HasPrefix(l, "ERROR") {
			b.Fatalf("bare client: %s", l)
		}
		if l == "READY" {
			break
		}
	}
	bReady := time.Since(t1)
	b.Logf("daemon ready in %v (%d reconnects), bare client idling in %v", dReady, reconnects, bReady)

	// Idle.
	b.ResetTimer()
	dRSS0, dCPU0, err := procStat(dcmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	bRSS0, bCPU0, err := procStat(bcmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	dMax, bMax := dRSS0, bRSS0
	end := time.Now().Add(sc.idle)
	for time.Now().Before(end) {
		time.Sleep(min(5*time.Second, time.Until(end)))
		if r, _, err := procStat(dcmd.Process.Pid); err == nil {
			dMax = max(dMax, r)
		} else {
			b.Fatalf("daemon died while idle: %v", err)
		}
		if r, _, err := procStat(bcmd.Process.Pid); err == nil {
			bMax = max(bMax, r)
		}
	}
	_, dCPU1, _ := procStat(dcmd.Process.Pid)
	_, bCPU1, _ := procStat(bcmd.Process.Pid)
	dPct := 100*dCPU1.Seconds() - 100*dCPU0.Seconds()
	dPct /= sc.idle.Seconds()
	bPct := (100*bCPU1.Seconds() - 100*bCPU0.Seconds()) / sc.idle.Seconds()

	// A reply to the last account's offer.
	off, _ := logf.Seek(0, io.SeekCurrent)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	// One delivery to both last accounts: the daemon's and the bare
	// client's (which watches its own accounts: two IDLE connections on
	// the same mailbox in one shared imap process would steal each other's
	// inotify watch).
	bareLast := strings.Replace(last, "acct", "bare", 1)
	err = w.s.Send(ctx, client, []string{last, bareLast}, replyMsg(client, last, offerID, "last-reply@buyer.test", subj, time.Now(), 10))
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	sentAt := time.Now()
	var bareLat, dLat time.Duration
	deadline := time.Now().Add(30 * time.Second)
	bareDone := make(chan time.Duration, 1)
	go func() {
		for l := range lines {
			f := strings.Fields(l)
			if len(f) == 4 && f[0] == "EXISTS" && f[1] == bareLast && f[2] == "INBOX" {
				ns, _ := strconv.ParseInt(f[3], 10, 64)
				bareDone <- time.Unix(0, ns).Sub(sentAt)
				return
			}
		}
	}()
	want := []byte("msg=answered account=" + last)
	for dLat == 0 && time.Now().Before(deadline) {
		data, _ := os.ReadFile(logPath)
		if int64(len(data)) > off && bytes.Contains(data[off:], want) {
			dLat = time.Since(sentAt)
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	select {
	case bareLat = <-bareDone:
	case <-time.After(time.Until(deadline) + time.Second):
	}
	b.StopTimer()
	if dLat == 0 {
		data, _ := os.ReadFile(logPath)
		b.Fatalf("the last account's reply was not answered within 30 s; log tail:\n%s", tail(string(data), 20))
	}
	inotify := "no inotify warnings in dovecot.log"
	if lg, err := os.ReadFile(filepath.Join(w.s.Dir, "dovecot", "dovecot.log")); err == nil && bytes.Contains(bytes.ToLower(lg), []byte("inotify")) {
		inotify = "dovecot.log warns about inotify (sessions may poll)"
	}
	b.ReportMetric(float64(dMax)/1e6, "MB-RSS")
	b.ReportMetric(dPct, "%CPU-idle")
	record(b, sc, row{
		Figure:  fmt.Sprintf("accounts per process: %d accounts (%d IDLE connections), idle %v", sc.accounts, 2*sc.accounts, sc.idle),
		Value:   fmt.Sprintf("RSS %.0f MB, CPU %.2f %% of one core, last account's reply answered in %s", float64(dMax)/1e6, dPct, ms(dLat)),
		Limit:   fmt.Sprintf("bare IDLE process: RSS %.0f MB, CPU %.2f %%, EXISTS in %s", float64(bMax)/1e6, bPct, ms(bareLat)),
		Ratio:   fmt.Sprintf("RSS %.1f, latency %.2f", float64(dMax)/float64(bMax), dLat.Seconds()/max(bareLat.Seconds(), 1e-3)),
		Target:  "RSS < 300 MB, CPU < 5 %, seen within 1 s",
		Verdict: verdict(dMax < 300e6 && dPct < 5 && dLat < time.Second),
		Notes:   fmt.Sprintf("daemon exec → READY %s (%d reconnects on the way), bare client connected in %s; Dovecot with shared imap processes (client_limit 100, service_count 0); %s", secs(dReady), reconnects, secs(bReady), inotify),
	})
}

func benchConns(n int) int {
	if v := os.Getenv("BENCH_CONNS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	return n
}

package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"followupd/internal/mailtest"
	"followupd/message"
	"followupd/store"
)

// killIterations is how many SIGKILL + restart rounds scenario 5 runs
// (the issue asks for at least 20).
const killIterations = 24

// killHarness follows the daemon's JSON logs across its restarts.
type killHarness struct {
	t     *testing.T
	lines chan logLine
	out   *logBuffer
	args  []string
	// cfgPath is the daemon's config, for the CLI.
	cfgPath string

	fuOf       map[string]uint64 // tracked offer Message-ID -> follow-up id
	settled    map[uint64]string // follow-up id -> "sent" | "uncertain"
	submitting map[uint64]bool   // follow-up id -> "submitting reminder" logged
	accepted   map[uint64]bool   // follow-up id -> "reminder submitted" (SMTP 250) logged
	synced     int               // "all accounts synced" lines: one per process that got ready
}

// start starts the daemon and waits until it finished its first sync (so
// its signal handlers and control socket are up: a SIGTERM or a CLI call
// during start-up would test nothing).
func (h *killHarness) start() *proc {
	h.t.Helper()
	n := h.synced
	p := startProc(h.t, h.lines, h.out, nil, h.args...)
	if !h.until(func() bool { return h.synced > n }, 20*time.Second) {
		h.t.Fatalf("followupd not synced within 20s of its start")
	}
	return p
}

// take applies one log line to what the harness knows.
func (h *killHarness) take(l logLine) {
	id := func() uint64 {
		n, _ := strconv.ParseUint(l.str("id"), 10, 64)
		return n
	}
	switch l.str("msg") {
	case "tracked":
		h.fuOf[l.str("msgid")] = id()
	case "all accounts synced":
		h.synced++
	case "reminder sent", "step proven by own copy in Sent":
		h.settled[id()] = "sent"
	case "step uncertain: a person must decide":
		h.settled[id()] = "uncertain"
	case "submitting reminder":
		if fu, _, ok := message.ParseOwnMessageID(l.str("msgid")); ok {
			h.submitting[fu] = true
		}
	case "reminder submitted":
		if fu, _, ok := message.ParseOwnMessageID(l.str("msgid")); ok {
			h.accepted[fu] = true
		}
	}
}

// settle waits until the step of the offer msgid is settled — sent or
// uncertain. The log says so, except when the kill fell between the
// store's commit and the line that reports it: then the daemon's own view
// (followupd list -json) tells, since a follow-up no longer in sending was
// settled before the kill.
func (h *killHarness) settle(msgid string, timeout time.Duration) bool {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	settled := func() bool { fu, ok := h.fuOf[msgid]; return ok && h.settled[fu] != "" }
	for time.Now().Before(deadline) {
		if h.until(settled, time.Second) {
			return true
		}
		out, code := runCLI(h.t, "list", "-config", h.cfgPath, "-json")
		var items []struct {
			ID        uint64 `json:"id"`
			MessageID string `json:"message_id"`
			State     string `json:"state"`
			Step      int    `json:"step"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &items) != nil {
			continue
		}
		for _, it := range items {
			if it.MessageID != msgid {
				continue
			}
			h.fuOf[msgid] = it.ID
			switch {
			case it.State == "uncertain":
				h.settled[it.ID] = "uncertain"
			case it.State == "finished" || (it.State == "waiting" && it.Step > 1):
				h.settled[it.ID] = "sent"
			}
		}
		if settled() {
			return true
		}
	}
	return false
}

// until reads log lines until cond holds or timeout passes.
func (h *killHarness) until(cond func() bool, timeout time.Duration) bool {
	deadline := time.After(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case l := <-h.lines:
			h.take(l)
		case <-tick.C:
		case <-deadline:
			return cond()
		}
	}
	return true
}

// Scenario 5: the real binary is killed with SIGKILL at random moments
// around a due send, killIterations times, and restarted each time. The
// client's INBOX never holds two copies of a step, every step ends
// delivered exactly once, except where the outcome could not be known: then
// it is uncertain, in the store and the ledger, and never resent.
func TestScenario5KillLoop(t *testing.T) {
	begin := time.Now()
	s := mailtest.Start(t, mailtest.Options{Users: users(pw, ivan, anna)})
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("INTEROP_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	t.Logf("scenario 5: seed %d (INTEROP_SEED=%d reproduces the kill times)", seed, seed)

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "password"), pw+"\n", 0o600)
	ihost, iport := splitHostPort(t, s.IMAPAddr)
	shost, sport := splitHostPort(t, s.SubmissionAddr)
	cfgPath := filepath.Join(dir, "followupd.toml")
	writeFile(t, cfgPath, fmt.Sprintf(`
state_dir = %q
time_zone = "UTC"
log_level = "debug"
%s

[[account]]
name = "ivan"
address = %q
display_name = "Ivan"
password_file = %q
max_per_hour = 3600
imap = { host = %q, port = %s, security = "none" }
smtp = { host = %q, port = %s, security = "none" }

[[rule]]
name = "offer"
match.subject = ['(?i)offer']
  [[rule.step]]
  after = "2s"
  template = "r"

[template.r]
body = "Any news about {{.Subject}}?"
`, filepath.Join(dir, "state"), weekendWorkdays(), ivan, filepath.Join(dir, "password"), ihost, iport, shost, sport), 0o600)

	h := &killHarness{t: t, lines: make(chan logLine, 65536), out: &logBuffer{},
		args: []string{"run", "-config", cfgPath, "-log-format", "json"}, cfgPath: cfgPath,
		fuOf: map[string]uint64{}, settled: map[uint64]string{}, submitting: map[uint64]bool{}, accepted: map[uint64]bool{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("followupd log (tail):\n%s", h.out.tail(200))
		}
		if d := os.Getenv("INTEROP_LOGDIR"); d != "" {
			if err := os.WriteFile(filepath.Join(d, t.Name()+".log"), []byte(h.out.String()), 0o644); err != nil {
				t.Logf("keeping the daemon log: %v", err)
			}
		}
	})

	type round struct {
		msgid    string
		strategy string
		killedAt time.Duration // after the offer was saved
		outcome  string        // "sent" or "uncertain", as logged after the restart
		before   string        // what the kill interrupted: untracked, waiting, in-smtp, after-smtp (accepted, not recorded), settled
	}
	var rounds []round
	p := h.start()
	for i := 0; i < killIterations; i++ {
		id := fmt.Sprintf("kill-%02d@seller.test", i)
		raw := rawMessage(id, "", ivan, anna, "Offer "+id, "Our offer.", time.Now())
		if err := s.Append(ivan, "Sent", raw, `\Seen`); err != nil {
			t.Fatal(err)
		}
		saved := time.Now()
		r := round{msgid: id}
		if i%2 == 1 {
			// Inside the send path: once the SMTP dial is logged, within
			// the time the transaction, APPEND and commit take.
			r.strategy = "in-send"
			ok := h.until(func() bool { fu, ok := h.fuOf[id]; return ok && h.submitting[fu] }, 15*time.Second)
			if !ok {
				t.Fatalf("round %d: no submission of %s logged within 15s", i, id)
			}
			// The SMTP transaction takes a few ms on loopback, APPEND
			// and the commit some tens: half the kills aim at each.
			if rng.IntN(2) == 0 {
				time.Sleep(time.Duration(rng.Int64N(int64(4 * time.Millisecond))))
			} else {
				time.Sleep(4*time.Millisecond + time.Duration(rng.Int64N(int64(36*time.Millisecond))))
			}
		} else {
			// Anywhere around the due time (1-2 s after saving).
			r.strategy = "around-due"
			at := saved.Add(300*time.Millisecond + time.Duration(rng.Int64N(int64(2200*time.Millisecond))))
			h.until(func() bool { return !time.Now().Before(at) }, 10*time.Second)
		}
		p.kill()
		r.killedAt = time.Since(saved)
		// Drain what the dead process wrote, to know what the kill cut.
		h.until(func() bool { return len(h.lines) == 0 }, time.Second)
		fu, tracked := h.fuOf[id]
		switch {
		case !tracked:
			r.before = "untracked"
		case h.settled[fu] != "":
			r.before = "settled"
		case h.accepted[fu]:
			r.before = "after-smtp"
		case h.submitting[fu]:
			r.before = "in-smtp"
		default:
			r.before = "waiting"
		}
		p = h.start()
		if !h.settle(id, 30*time.Second) {
			t.Fatalf("round %d: %s not settled (sent or uncertain) within 30s of the restart", i, id)
		}
		r.outcome = h.settled[h.fuOf[id]]
		rounds = append(rounds, r)
	}
	// The running daemon reports the uncertain steps to a person:
	// `followupd list -state uncertain` and `followupd show ID`.
	listed := map[uint64]bool{}
	out, code := runCLI(t, "list", "-config", cfgPath, "-state", "uncertain", "-json")
	var items []struct {
		ID     uint64 `json:"id"`
		State  string `json:"state"`
		SendID string `json:"send_id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &items) != nil {
		t.Errorf("followupd list -state uncertain -json: exit %d:\n%s", code, out)
	}
	for _, it := range items {
		listed[it.ID] = true
		if it.State != "uncertain" || it.SendID == "" {
			t.Errorf("list -state uncertain shows %d as %s (send id %q)", it.ID, it.State, it.SendID)
		}
		if show, code := runCLI(t, "show", "-config", cfgPath, fmt.Sprint(it.ID)); code != 0 || !strings.Contains(show, "uncertain") || !strings.Contains(show, it.SendID) {
			t.Errorf("followupd show %d: exit %d, want the uncertain step and its Message-ID %s:\n%s", it.ID, code, it.SendID, show)
		}
	}
	p.stop(t, 15*time.Second)

	// The store, read after the last process stopped.
	db, err := store.Open(filepath.Join(dir, "state", "followupd.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs, err := db.List(store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(listed); n > 0 {
		for id := range listed {
			if f, err := db.Get(id); err != nil || f.State != store.StateUncertain {
				t.Errorf("`followupd list -state uncertain` showed %d, the store has it %v (%v)", id, f, err)
			}
		}
	}
	if len(fs) != killIterations {
		t.Fatalf("%d follow-ups in the store, want %d (one per offer)", len(fs), killIterations)
	}
	delivered := map[uint64]string{} // follow-up -> the Message-ID its ledger says was sent
	uncertain := map[uint64]bool{}
	for _, f := range fs {
		les, err := db.Ledger(f.ID)
		if err != nil {
			t.Fatal(err)
		}
		var sent, unc, other []string
		for _, le := range les {
			switch le.State {
			case store.LedgerSent:
				sent = append(sent, le.MessageID)
			case store.LedgerUncertain:
				unc = append(unc, le.MessageID)
			case store.LedgerRolledBack:
			default:
				other = append(other, le.State.String())
			}
		}
		switch {
		case f.State == store.StateFinished && len(sent) == 1 && len(unc) == 0 && len(other) == 0:
			delivered[f.ID] = sent[0]
		case f.State == store.StateUncertain && len(sent) == 0 && len(unc) == 1 && len(other) == 0 && f.SendID == unc[0]:
			uncertain[f.ID] = true
			if !listed[f.ID] {
				t.Errorf("follow-up %d is uncertain in the store but not in `followupd list -state uncertain`", f.ID)
			}
		default:
			t.Errorf("follow-up %d (%s): state %s, ledger sent %v uncertain %v other %v: want finished with one sent entry, or uncertain",
				f.ID, f.MessageID, f.State, sent, unc, other)
		}
	}

	// The client's INBOX: every delivered step arrived, no step twice.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.WaitDelivered(ctx, anna, "INBOX", len(delivered)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // let any duplicate still in Postfix's queue land
	raws, err := s.WaitDelivered(ctx, anna, "INBOX", 0)
	if err != nil {
		t.Fatal(err)
	}
	copies := map[string][]string{} // "fu/step" -> Message-IDs delivered
	byID := map[string]int{}
	for _, raw := range raws {
		rec, err := message.ParseHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		fu, step, ok := message.ParseOwnMessageID(rec.MessageID)
		if !ok {
			t.Errorf("INBOX holds %q, not a reminder", rec.MessageID)
			continue
		}
		if hv := rec.Headers[message.OwnHeader]; !strings.Contains(hv, fmt.Sprintf("id=%d", fu)) {
			t.Errorf("reminder %s has %s %q", rec.MessageID, message.OwnHeader, hv)
		}
		key := fmt.Sprintf("%d/%d", fu, step)
		copies[key] = append(copies[key], rec.MessageID)
		byID[rec.MessageID]++
	}
	dups := 0
	for key, ids := range copies {
		if len(ids) > 1 {
			dups += len(ids) - 1
			t.Errorf("step %s delivered %d times: %v", key, len(ids), ids)
		}
	}
	uncertainDelivered := 0
	for _, f := range fs {
		key := fmt.Sprintf("%d/1", f.ID)
		switch {
		case delivered[f.ID] != "":
			if len(copies[key]) != 1 || copies[key][0] != delivered[f.ID] {
				t.Errorf("follow-up %d: ledger says %s was sent, INBOX holds %v", f.ID, delivered[f.ID], copies[key])
			}
		case uncertain[f.ID]:
			if len(copies[key]) == 1 {
				uncertainDelivered++
			}
		}
	}
	for key := range copies {
		fu, _ := strconv.ParseUint(strings.SplitN(key, "/", 2)[0], 10, 64)
		if delivered[fu] == "" && !uncertain[fu] {
			t.Errorf("INBOX holds a reminder for follow-up %d the store does not account for", fu)
		}
	}

	byStrategy := map[string]int{}
	byBefore := map[string]map[string]int{}
	for _, r := range rounds {
		byStrategy[r.strategy]++
		if byBefore[r.before] == nil {
			byBefore[r.before] = map[string]int{}
		}
		byBefore[r.before][r.outcome]++
	}
	var cut []string
	for k, v := range byBefore {
		cut = append(cut, fmt.Sprintf("%s %d (sent %d, uncertain %d)", k, v["sent"]+v["uncertain"], v["sent"], v["uncertain"]))
	}
	sort.Strings(cut)
	t.Logf("scenario 5: %d kill-restart iterations (%d around the due time, %d inside the send path); kills fell (by what the log showed last): %s",
		len(rounds), byStrategy["around-due"], byStrategy["in-send"], strings.Join(cut, ", "))
	t.Logf("scenario 5: %d ended delivered exactly once, %d uncertain (%d of them had in fact been delivered, %d not); duplicates: %d among %d reminders delivered",
		len(delivered), len(uncertain), uncertainDelivered, len(uncertain)-uncertainDelivered, dups, len(raws))
	took(t, 5, fmt.Sprintf("%d SIGKILL+restart rounds", len(rounds)), begin)
}

func splitHostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("address %q has no port", addr)
	}
	return addr[:i], addr[i+1:]
}

// runCLI runs the built binary with args (a control command) and returns
// its standard output and exit code.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = cleanEnv()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		t.Logf("followupd %v: %v: %s", args, err, stderr.String())
	}
	return stdout.String(), code
}

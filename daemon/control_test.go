package daemon_test

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"followupd/config"
	"followupd/control"
	"followupd/daemon"
	"followupd/message"
	"followupd/store"
)

// ctl runs one CLI command in-process against the socket, as `followupd
// CMD -socket SOCK ARGS...` would.
func ctl(t *testing.T, sock string, cmd string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = control.Main(cmd, append([]string{"-socket", sock}, args...), &o, &e)
	t.Logf("$ followupd %s %s -> %d\n%s%s", cmd, strings.Join(args, " "), code, o.String(), e.String())
	return o.String(), e.String(), code
}

// ctlJSON runs a -json command and decodes its output into v.
func ctlJSON(t *testing.T, sock string, v any, cmd string, args ...string) {
	t.Helper()
	out, _, code := ctl(t, sock, cmd, append([]string{"-json"}, args...)...)
	if code != 0 {
		t.Fatalf("followupd %s: exit %d", cmd, code)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("followupd %s -json: %v\n%s", cmd, err, out)
	}
}

// seedUncertain puts a follow-up whose step 1 is uncertain (a crash inside
// SMTP) into the store before the daemon opens it.
func seedUncertain(t *testing.T, dir string, at time.Time) uint64 {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, daemon.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f, _, err := db.Track(&store.FollowUp{
		Account: seller, MessageID: "old-offer@seller.test", Rule: "offer", Subject: "Old offer",
		From: message.Address{Addr: seller}, To: []message.Address{{Addr: client}},
		SentAt: at.Add(-5 * 24 * time.Hour), LastSent: at.Add(-5 * 24 * time.Hour),
		State: store.StateWaiting, Step: 1, Due: at.Add(-time.Hour),
	}, at.Add(-5*24*time.Hour), "seeded")
	if err != nil {
		t.Fatal(err)
	}
	sendID := message.NewOwnMessageID("seller.test", f.ID, 1)
	if _, err := db.Transition(f.ID, store.EvDue, at.Add(-time.Hour), "seeded intent", func(f *store.FollowUp) error {
		f.State, f.SendID = store.StateSending, sendID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Transition(f.ID, store.EvUncertain, at.Add(-time.Hour), "seeded crash", func(f *store.FollowUp) error {
		f.State, f.Due = store.StateUncertain, time.Time{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return f.ID
}

func TestControlCLI(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "") // the socket goes to state_dir
	start := monday(t)
	w := newWorld(t, start, seller, client)
	cfg := w.config(`metrics_listen = "127.0.0.1:0"`, seller)
	// Approval mode for the seller: due steps go to Drafts.
	raw, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.File, bytes.Replace(raw, []byte("max_per_hour = 3600\n"), []byte("max_per_hour = 3600\nmode = \"approve\"\n"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = config.Load(cfg.File); err != nil {
		t.Fatal(err)
	}
	uncertain := seedUncertain(t, w.dir, start)
	d, stop := w.run(cfg)
	sock := filepath.Join(w.dir, "control.sock")

	t.Run("socket is 0600", func(t *testing.T) {
		fi, err := os.Stat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket mode %v, want socket 0600", fi.Mode())
		}
		if leftovers, _ := filepath.Glob(sock + ".*.tmp"); len(leftovers) > 0 {
			t.Errorf("temporary sockets left: %v", leftovers)
		}
	})

	w.sendOffer(seller, client, "offer-a@seller.test", "Offer A", start)
	w.sendOffer(seller, client, "offer-b@seller.test", "Offer B", start)
	w.sendOffer(seller, client, "offer-c@seller.test", "Offer C", start)
	ids := map[string]uint64{}
	for _, id := range []string{"offer-a@seller.test", "offer-b@seller.test", "offer-c@seller.test"} {
		ids[id] = w.expect("tracked", id).FollowUp
	}
	idA, idB, idC := ids["offer-a@seller.test"], ids["offer-b@seller.test"], ids["offer-c@seller.test"]

	t.Run("status", func(t *testing.T) {
		out, _, code := ctl(t, sock, "status")
		for _, want := range []string{seller, "connected", "approve", "waiting 3", "uncertain 1", "followupd resolve ID sent|unsent"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("status lacks %q (exit %d)", want, code)
			}
		}
		var st control.Status
		ctlJSON(t, sock, &st, "status")
		if !st.Ready || st.Counts["waiting"] != 3 || st.Counts["uncertain"] != 1 || len(st.Accounts) != 1 || st.Metrics == "" {
			t.Fatalf("status %+v", st)
		}
		for _, f := range st.Accounts[0].Folders {
			if !f.Connected || f.LastSync.IsZero() {
				t.Errorf("folder %+v not connected and synced", f)
			}
		}
		if len(st.Accounts[0].Folders) < 2 {
			t.Errorf("folders %+v, want INBOX and Sent at least", st.Accounts[0].Folders)
		}
		// -config finds the same socket.
		var o, e bytes.Buffer
		if code := control.Main("status", []string{"-config", cfg.File}, &o, &e); code != 0 || !strings.Contains(o.String(), seller) {
			t.Errorf("status -config: exit %d\n%s%s", code, o.String(), e.String())
		}
	})

	t.Run("list", func(t *testing.T) {
		var all []control.FollowUp
		ctlJSON(t, sock, &all, "list")
		if len(all) != 4 {
			t.Fatalf("list: %d follow-ups, want 4", len(all))
		}
		var waiting []control.FollowUp
		ctlJSON(t, sock, &waiting, "list", "-state", "waiting", "-account", seller, "-rule", "offer")
		if len(waiting) != 3 || waiting[0].State != "waiting" || waiting[0].Steps != 2 || waiting[0].To[0] != client {
			t.Errorf("list -state waiting: %+v", waiting)
		}
		out, _, code := ctl(t, sock, "list")
		if code != 0 || !strings.Contains(out, "Offer B") || !strings.Contains(out, "uncertain") {
			t.Errorf("list text:\n%s", out)
		}
		if _, errOut, code := ctl(t, sock, "list", "-state", "sleeping"); code != control.ExitFailed || !strings.Contains(errOut, `unknown state "sleeping"`) {
			t.Errorf("list -state sleeping: exit %d %s", code, errOut)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		out, _, code := ctl(t, sock, "cancel", strconv.FormatUint(idA, 10))
		if code != 0 || !strings.Contains(out, "cancelled") {
			t.Fatalf("cancel: exit %d %s", code, out)
		}
		w.expect("stopped", "offer-a@seller.test")
		var th control.Thread
		ctlJSON(t, sock, &th, "show", strconv.FormatUint(idA, 10))
		last := th.History[len(th.History)-1]
		if th.FollowUp.State != "stopped" || last.Event != "stop" || last.Reason != daemon.CancelReason {
			t.Errorf("after cancel: %s, last history %+v", th.FollowUp.State, last)
		}
		if _, errOut, code := ctl(t, sock, "cancel", strconv.FormatUint(idA, 10)); code != control.ExitFailed || !strings.Contains(errOut, "it is stopped") {
			t.Errorf("second cancel: exit %d %s", code, errOut)
		}
		if _, errOut, code := ctl(t, sock, "cancel", "999"); code != control.ExitFailed || !strings.Contains(errOut, "no follow-up 999") {
			t.Errorf("cancel 999: exit %d %s", code, errOut)
		}
		if _, _, code := ctl(t, sock, "cancel", "abc"); code != 2 {
			t.Errorf("cancel abc: exit %d, want 2", code)
		}
	})

	t.Run("snooze", func(t *testing.T) {
		before := followUp(t, d, "offer-b@seller.test").Due
		out, _, code := ctl(t, sock, "snooze", strconv.FormatUint(idB, 10), "2 days")
		if code != 0 || !strings.Contains(out, "snoozed by 2 days") {
			t.Fatalf("snooze: exit %d %s", code, out)
		}
		after := followUp(t, d, "offer-b@seller.test")
		if after.State != store.StateWaiting || after.Due.Sub(before) < 48*time.Hour {
			t.Errorf("snoozed due %s, was %s", after.Due, before)
		}
		if _, _, code := ctl(t, sock, "snooze", strconv.FormatUint(idB, 10), "soon"); code != 2 {
			t.Errorf("snooze soon: exit %d, want 2", code)
		}
		if _, errOut, code := ctl(t, sock, "snooze", strconv.FormatUint(idA, 10), "1 day"); code != control.ExitFailed || !strings.Contains(errOut, "only a waiting or held") {
			t.Errorf("snooze a stopped one: exit %d %s", code, errOut)
		}
	})

	t.Run("resolve", func(t *testing.T) {
		if _, _, code := ctl(t, sock, "resolve", strconv.FormatUint(uncertain, 10), "maybe"); code != 2 {
			t.Errorf("resolve maybe: exit %d", code)
		}
		out, _, code := ctl(t, sock, "resolve", strconv.FormatUint(uncertain, 10), "sent")
		if code != 0 || !strings.Contains(out, "resolved as sent") {
			t.Fatalf("resolve: exit %d %s", code, out)
		}
		f := followUp(t, d, "old-offer@seller.test")
		if f.State != store.StateWaiting || f.Step != 2 || len(f.Sent) != 1 {
			t.Errorf("after resolve sent: %s step %d sent %v", f.State, f.Step, f.Sent)
		}
		if _, errOut, code := ctl(t, sock, "resolve", strconv.FormatUint(uncertain, 10), "unsent"); code != control.ExitFailed || !strings.Contains(errOut, "only an uncertain step") {
			t.Errorf("second resolve: exit %d %s", code, errOut)
		}
	})

	t.Run("approve", func(t *testing.T) {
		if _, errOut, code := ctl(t, sock, "approve", strconv.FormatUint(idC, 10)); code != control.ExitFailed || !strings.Contains(errOut, "only a drafted step") {
			t.Errorf("approve before the draft: exit %d %s", code, errOut)
		}
		// Thursday 10:00: offer C's step 1 and the resolved follow-up's
		// step 2 fall due and go to Drafts (approval mode).
		w.advanceTo(start.Add(3 * 24 * time.Hour))
		// Paced a second apart (max_per_hour 3600) from whenever the
		// first went: the clock must pass the second's slot.
		w.advanceTo(w.clk.Now().Add(5 * time.Second))
		w.expect("drafted", "offer-c@seller.test")
		w.expect("drafted", "old-offer@seller.test")
		if n := w.mailboxSize(seller, "Drafts"); n != 2 {
			t.Fatalf("Drafts holds %d messages, want 2", n)
		}
		if n := len(w.remindersTo(client)); n != 0 {
			t.Fatalf("%d reminders sent in approval mode before approval", n)
		}
		out, errOut, code := ctl(t, sock, "approve", "-all")
		if code != 0 || strings.Count(out, "approved") != 2 || errOut != "" {
			t.Fatalf("approve -all: exit %d\n%s%s", code, out, errOut)
		}
		w.expect("approved", "offer-c@seller.test")
		w.advanceTo(w.clk.Now().Add(10 * time.Minute))
		w.expect("sent", "offer-c@seller.test")
		w.expect("sent", "old-offer@seller.test")
		rs := w.remindersTo(client)
		if len(rs) != 2 {
			t.Fatalf("%d reminders after approval, want 2", len(rs))
		}
		if n := w.mailboxSize(seller, "Drafts"); n != 0 {
			t.Errorf("Drafts still holds %d approved drafts", n)
		}
		f := followUp(t, d, "offer-c@seller.test")
		if f.State != store.StateWaiting || f.Step != 2 || f.Approved != 1 || len(f.Sent) != 1 {
			t.Errorf("after approval: %s step %d approved %d sent %v", f.State, f.Step, f.Approved, f.Sent)
		}
		out, _, _ = ctl(t, sock, "show", strconv.FormatUint(idC, 10))
		for _, want := range []string{"drafted", "approve", "draft -> waiting", "send ledger:", "rolled-back", "sent", "step 2 due"} {
			if !strings.Contains(out, want) {
				t.Errorf("show lacks %q", want)
			}
		}
		// Nothing is left to approve.
		out, _, code = ctl(t, sock, "approve", "-all")
		if code != 0 || !strings.Contains(out, "no drafted reminders") {
			t.Errorf("second approve -all: exit %d %s", code, out)
		}
	})

	t.Run("backup", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "copy.db")
		out, _, code := ctl(t, sock, "backup", file)
		if code != 0 || !strings.Contains(out, "bytes written to "+file) {
			t.Fatalf("backup: exit %d %s", code, out)
		}
		db, err := store.Open(file, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("opening the backup: %v", err)
		}
		defer db.Close()
		if err := db.Check(); err != nil {
			t.Error(err)
		}
		if f, err := db.Get(idA); err != nil || f.State != store.StateStopped {
			t.Errorf("backup's follow-up %d: %v %v", idA, f, err)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		// An answer, for the latency histogram.
		w.deliver(seller, rawMessage("answer-b@client.test", "offer-b@seller.test", client, seller, "Re: Offer B", "Thanks, we accept.", w.clk.Now().Add(-time.Minute), ""))
		// Any message from the recipient answers all three open threads.
		for _, id := range []string{"offer-b@seller.test", "offer-c@seller.test", "old-offer@seller.test"} {
			w.expect("answered", id)
		}
		var st control.Status
		ctlJSON(t, sock, &st, "status")
		resp, err := http.Get("http://" + st.Metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`followupd_imap_connected{account="` + seller + `",mailbox="INBOX",role="inbox"} 1`,
			`followupd_imap_reconnects_total{account="` + seller + `"`,
			`followupd_followups{state="answered"} 3`,
			`followupd_followups{state="stopped"} 1`,
			`followupd_reminders_sent_total{account="` + seller + `"} 2`,
			`followupd_messages_indexed_total{account="` + seller + `"}`,
			`followupd_answer_latency_seconds_count{account="` + seller + `",since="date"} 3`,
			`followupd_answer_latency_seconds_count{account="` + seller + `",since="arrival"} 3`,
			`followupd_idle_lag_seconds_count{account="` + seller + `"}`,
			`followupd_events_total{account="` + seller + `",kind="approved"} 2`,
			`followupd_ready 1`,
			`followupd_build_info`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("not running", func(t *testing.T) {
		stop()
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Errorf("socket left behind after stop: %v", err)
		}
		_, errOut, code := ctl(t, sock, "status")
		if code != control.ExitNotRunning || !strings.Contains(errOut, "followupd is not running (no socket at "+sock+")") || !strings.Contains(errOut, "systemctl start followupd") {
			t.Errorf("status without daemon: exit %d %s", code, errOut)
		}
	})
}

func (w *world) mailboxSize(user, mailbox string) int {
	w.t.Helper()
	c, err := w.imap.Dial(user)
	if err != nil {
		w.t.Fatal(err)
	}
	defer c.Close()
	data, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		w.t.Fatal(err)
	}
	return int(data.NumMessages)
}

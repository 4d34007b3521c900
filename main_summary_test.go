package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"followupd/daemon"
	"followupd/message"
	"followupd/store"
)

func TestSummaryPrint(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "f.toml")
	cfg := `state_dir = "` + dir + `"
control_socket = "` + filepath.Join(dir, "ctl.sock") + `"
[summary]
enabled = true
leads = ["boss@seller.example"]
[[account]]
address = "ivan@seller.example"
display_name = "Иван"
password_env = "NOPE"
imap = { host = "127.0.0.1", security = "none" }
smtp = { host = "127.0.0.1", security = "none" }
[[rule]]
name = "offer"
match.subject = ['offer']
  [[rule.step]]
  after = "3 days"
  template = "t"
[template.t]
body = "hi"
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, daemon.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	f := &store.FollowUp{Account: "ivan@seller.example", MessageID: "o1@seller.example", Rule: "offer", Subject: "Offer <1> для ООО «Ромашка»",
		To: []message.Address{{Addr: "anna@client.example"}}, SentAt: now.Add(-time.Hour), LastSent: now.Add(-time.Hour),
		State: store.StateWaiting, Step: 1, Due: now.Add(72 * time.Hour)}
	if _, _, err := db.Track(f, now, "test"); err != nil {
		t.Fatal(err)
	}

	// The store is locked and nothing answers on the control socket.
	var out, errb bytes.Buffer
	if code := run([]string{"summary", "-config", cfgPath, "-print"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "could not be fetched over") {
		t.Errorf("locked store: exit %d, %q", code, errb.String())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	errb.Reset()
	if code := run([]string{"summary", "-config", cfgPath, "-print"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"To: ivan@seller.example\nSubject: Follow-ups", "To: boss@seller.example\nSubject: Team follow-ups", "Offer <1> для ООО «Ромашка»", "WAITING FOR AN ANSWER (1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"summary", "-config", cfgPath, "-print", "-team", "-html"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "<!DOCTYPE html>") || !strings.Contains(out.String(), "Offer &lt;1&gt;") || !strings.Contains(out.String(), "Sales team") {
		t.Errorf("HTML:\n%.400s", out.String())
	}
	if code := run([]string{"summary", "-config", cfgPath}, &out, &errb); code != 2 {
		t.Errorf("no -print/-now: exit %d", code)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"followupd/imapwatch/imaptest"
)

// TestBacktestCommand runs `followupd backtest` against a seeded mailbox:
// an offer sent three weeks ago and never answered gets both reminders.
func TestBacktestCommand(t *testing.T) {
	srv := imaptest.NewServer(t)
	const user, pass = "sales@seller.example", "secret"
	if err := srv.AddUser(user, pass, "INBOX", "Sent"); err != nil {
		t.Fatal(err)
	}
	sent := time.Now().AddDate(0, 0, -21).Truncate(time.Second)
	raw := fmt.Sprintf("From: <%s>\r\nTo: <buyer@client.example>\r\nSubject: Offer 42\r\nMessage-ID: <offer42@seller.example>\r\nDate: %s\r\n\r\nPlease find our offer.\r\n",
		user, sent.Format(time.RFC1123Z))
	if _, err := srv.AppendAt(user, "Sent", []byte(raw), sent); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.Addr())
	dir := t.TempDir()
	t.Setenv("FOLLOWUPD_BT_PW", pass)
	cfg := fmt.Sprintf(`state_dir = %q
[[account]]
address = %q
password_env = "FOLLOWUPD_BT_PW"
imap = { host = %q, port = %s, security = "none" }
smtp = { host = "127.0.0.1", port = 1, security = "none" }
[[rule]]
name = "offer"
match.subject = ['(?i)offer']
  [[rule.step]]
  after = "3 business days"
  template = "t"
  [[rule.step]]
  after = "2 business days"
  template = "t"
[template.t]
body = "About {{.Subject}}?"
`, dir, user, host, port)
	path := filepath.Join(dir, "followupd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	if code := run([]string{"backtest", "-config", path, "-since", "30d", "-json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var types []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if m["message_id"] != "offer42@seller.example" {
			t.Errorf("line %q: wrong message_id", l)
		}
		types = append(types, fmt.Sprint(m["type"], m["step"]))
	}
	if got, want := strings.Join(types, ","), "tracked<nil>,reminder1,reminder2"; got != want {
		t.Errorf("lines %s, want %s\n%s", got, want, out.String())
	}

	out.Reset()
	if code := run([]string{"backtest", "-config", path, "-since", "30d"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "offer") {
		t.Errorf("text report: exit %d\n%s", code, out.String())
	}
	// With -since 7d the three-week-old offer is not replayed at all.
	out.Reset()
	if code := run([]string{"backtest", "-config", path, "-since", "7d", "-json"}, &out, &errb); code != 0 || out.Len() != 0 {
		t.Errorf("-since 7d: exit %d, output %q", code, out.String())
	}
	if code := run([]string{"backtest", "-config", path, "-since", "soon"}, &out, &errb); code != 2 {
		t.Errorf("bad -since: exit %d, want 2", code)
	}
}

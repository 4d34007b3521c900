package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// writeFile writes a test input into dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExplainText: one verdict per message with its reasons, in English
// and Russian, for incoming (reply, autoreply, bounce, other) and sent
// (tracked by a rule, untracked) messages, with the built-in defaults.
func TestExplainText(t *testing.T) {
	dir := t.TempDir()
	lunch := writeFile(t, dir, "lunch.eml", "Message-ID: <l@seller.example>\r\nFrom: sales@seller.example\r\nTo: anna@buyer.example\r\nSubject: Lunch on Friday?\r\nDate: Mon, 2 Mar 2026 10:00:00 +0300\r\n\r\nhi\r\n")
	invoice := writeFile(t, dir, "invoice.eml", "Message-ID: <i@seller.example>\r\nFrom: ivan@seller.example\r\nTo: anna@buyer.example\r\nSubject: =?utf-8?b?0KHRh9C10YIg4oSWIDQ1LzIwMjY=?=\r\nDate: Mon, 2 Mar 2026 10:00:00 +0300\r\n\r\nhi\r\n")
	noreply := writeFile(t, dir, "noreply.eml", "Message-ID: <n@seller.example>\r\nFrom: ivan@seller.example\r\nTo: noreply@buyer.example\r\nSubject: Commercial offer 9\r\nDate: Mon, 2 Mar 2026 10:00:00 +0300\r\n\r\nhi\r\n")
	tests := []struct {
		file string
		want string // regexp over the output
	}{
		{"classify/testdata/koi8r-reply.eml", `: reply\n  - no bounce or auto-reply signal`},
		{"classify/testdata/ooo-en.eml", `: autoreply\n  - auto-reply subject "out of office"\n(?s:.*)  return date: 2026-03-12\n`},
		{"classify/testdata/outlook-ooo-ru.eml", `: autoreply\n  - Auto-Submitted: auto-generated \(RFC 3834 §5\)\n(?s:.*)автоматический ответ(?s:.*)return date: 2026-03-16`},
		{"classify/testdata/ooo-de.eml", `: autoreply\n  - auto-reply subject "abwesenheitsnotiz"`},
		{"classify/testdata/ticket-ack.eml", `: autoreply\n  - auto-reply subject "ваше письмо получено"`},
		// An NDR from the sender's own Exchange is a bounce, not a sent message.
		{"classify/testdata/exchange-ndr.eml", `: bounce\n  - delivery status report \(RFC 3464\): Action failed for zakupki@buyer.example\n  failed recipients: zakupki@buyer.example\n`},
		{"classify/testdata/yandex-bounce.eml", `: bounce\n  - bounce subject "недоставленное сообщение"\n  failed recipients: nobody@buyer.example`},
		{"classify/testdata/address-gone.eml", `: bounce\n(?s:.*)address no longer in use`},
		{"classify/testdata/postfix-delayed.eml", `: other\n  - delivery delayed, not failed`},
		{"classify/testdata/read-receipt.eml", `: other\n  - read receipt`},
		{"message/testdata/cp1251-offer.eml", `: tracked \(rule offer\)\n  - subject matches offer`},
		{invoice, `: tracked \(rule invoice\)\n  - subject matches invoice`},
		{lunch, `: untracked\n  - rule offer: subject "Lunch on Friday\?" matches none`},
		{noreply, `: untracked\n  - every To recipient is an automatic address \(noreply@buyer.example\)`},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run([]string{"explain", tc.file}, &out, &errb); code != 0 {
				t.Fatalf("exit %d; stderr %s", code, errb.String())
			}
			re := regexp.MustCompile(`^` + regexp.QuoteMeta(tc.file) + tc.want)
			if !re.MatchString(out.String()) {
				t.Errorf("output\n%s\ndoes not match %s", out.String(), re)
			}
		})
	}
}

// TestExplainJSON: one JSON object per line, in argument order, with the
// documented fields; a file that cannot be read or is no message gets its
// own line with an error, the others go on, and the exit status is 1.
func TestExplainJSON(t *testing.T) {
	dir := t.TempDir()
	empty := writeFile(t, dir, "empty.eml", "")
	garbage := writeFile(t, dir, "garbage.eml", "\x00\x01\x02\xff\xfe binary\x00\x00")
	files := []string{
		"classify/testdata/gmail-dsn.eml",
		filepath.Join(dir, "missing.eml"),
		"classify/testdata/ooo-en.eml",
		dir, // a directory
		empty,
		garbage,
		"message/testdata/broken-mime.eml", // broken MIME still parses
		"classify/testdata/postfix-delayed.eml",
		"message/testdata/cp1251-offer.eml",
	}
	var out, errb bytes.Buffer
	code := run(append([]string{"explain", "-json"}, files...), &out, &errb)
	if code != 1 {
		t.Errorf("exit %d, want 1 (some files failed)", code)
	}
	var lines []map[string]json.RawMessage
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not one JSON object: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != len(files) {
		t.Fatalf("%d lines for %d files:\n%s", len(lines), len(files), out.String())
	}
	str := func(m map[string]json.RawMessage, k string) string {
		var s string
		_ = json.Unmarshal(m[k], &s)
		return s
	}
	want := []struct {
		kind, failed, ret, err string
	}{
		{kind: "bounce", failed: `["nobody@buyer.example"]`, ret: "null"},
		{err: "no such file"},
		{kind: "autoreply", failed: `[]`, ret: `"2026-03-12"`},
		{err: "is a directory"},
		{err: "not a mail message"},
		{err: "not a mail message"},
		{kind: "reply", failed: `[]`, ret: "null"},
		{kind: "other", failed: `[]`, ret: "null"},
		{kind: "tracked", failed: `[]`, ret: "null"},
	}
	for i, m := range lines {
		w := want[i]
		if got := str(m, "file"); got != files[i] {
			t.Errorf("line %d: file %q, want %q", i+1, got, files[i])
		}
		if w.err != "" {
			if e := str(m, "error"); !strings.Contains(e, w.err) {
				t.Errorf("line %d (%s): error %q, want it to contain %q", i+1, files[i], e, w.err)
			}
			continue
		}
		if _, ok := m["error"]; ok {
			t.Errorf("line %d (%s): unexpected error %s", i+1, files[i], m["error"])
		}
		for _, k := range []string{"file", "kind", "reasons", "failed_recipients", "return_date"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d (%s): no %q field", i+1, files[i], k)
			}
		}
		if got := str(m, "kind"); got != w.kind {
			t.Errorf("line %d (%s): kind %q, want %q", i+1, files[i], got, w.kind)
		}
		if got := string(m["failed_recipients"]); got != w.failed {
			t.Errorf("line %d (%s): failed_recipients %s, want %s", i+1, files[i], got, w.failed)
		}
		if got := string(m["return_date"]); got != w.ret {
			t.Errorf("line %d (%s): return_date %s, want %s", i+1, files[i], got, w.ret)
		}
		var reasons []string
		if err := json.Unmarshal(m["reasons"], &reasons); err != nil || len(reasons) == 0 {
			t.Errorf("line %d (%s): reasons %s: want a non-empty list", i+1, files[i], m["reasons"])
		}
	}
}

// TestExplainConfig: with -config, the configured rules and accounts
// decide; a message from the configured sender is judged as sent.
func TestExplainConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "f.toml", `state_dir = "`+dir+`"
[[account]]
address = "olga@vendor.test"
password_env = "UNUSED"
imap = { host = "imap.vendor.test" }
smtp = { host = "smtp.vendor.test" }

[[rule]]
name = "contract"
match.subject = ['(?i)договор №(?P<number>\d+)']
  [[rule.step]]
  after = "2 business days"
  template = "t"
[template.t]
body = "{{.Subject}}"
`)
	contract := writeFile(t, dir, "contract.eml", "Message-ID: <c@vendor.test>\r\nFrom: Olga <olga@vendor.test>\r\nTo: anna@buyer.example\r\nSubject: =?utf-8?b?0JTQvtCz0L7QstC+0YAg4oSWNzc=?=\r\nDate: Mon, 2 Mar 2026 10:00:00 +0300\r\n\r\nhi\r\n")
	// An offer by the built-in rules, but not by this configuration's.
	offer := writeFile(t, dir, "offer.eml", "Message-ID: <o@vendor.test>\r\nFrom: olga@vendor.test\r\nTo: anna@buyer.example\r\nSubject: Commercial offer 5\r\nDate: Mon, 2 Mar 2026 10:00:00 +0300\r\n\r\nhi\r\n")
	var out, errb bytes.Buffer
	if code := run([]string{"explain", "-config", cfg, contract, offer, "message/testdata/cp1251-offer.eml"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d; stderr %s", code, errb.String())
	}
	for _, re := range []string{
		regexp.QuoteMeta(contract) + `: tracked \(rule contract\)\n`,
		regexp.QuoteMeta(offer) + `: untracked\n  - rule contract: subject "Commercial offer 5" matches none`,
		// Ivan is no configured sender here: his offer reads as incoming mail.
		`cp1251-offer.eml: reply\n`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("output\n%s\ndoes not match %s", out.String(), re)
		}
	}
	for _, args := range [][]string{{"explain"}, {"explain", "-bogus"}} {
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code := run([]string{"explain", "-config", filepath.Join(dir, "nope.toml"), contract}, &out, &errb); code != 1 {
		t.Errorf("missing config: exit %d, want 1", code)
	}
}

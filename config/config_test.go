package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// base is a valid two-account configuration the error cases edit.
const base = `time_zone = "Europe/Moscow"
calendar = "ru"

[[account]]
address = "ivan@seller.example"
password_env = "FOLLOWUPD_TEST_PASSWORD"

[account.imap]
host = "imap.seller.example"

[account.smtp]
host = "smtp.seller.example"

[[account]]
name = "maria"
address = "maria@seller.example"
password_file = "maria.pass"

[account.imap]
host = "imap.seller.example"
security = "tls"

[account.smtp]
host = "smtp.seller.example"
security = "starttls"

[[rule]]
name = "offer"

[rule.match]
subject = ['(?i)offer', '(?i)КП']

[[rule.step]]
after = "3 business days"
template = "first"

[[rule.step]]
after = "5 business days"
template = "second"

[[rule]]
name = "invoice"

[rule.match]
subject = ['(?i)invoice (?P<number>\d+)']

[[rule.step]]
after = "72h"
template = "invoice"

[template.first]
body = "Hello {{.RecipientFirstName}}"

[template.second]
subject = "Re: {{.Subject}} ({{.Step}}/{{.Steps}})"
body = """
Hello again,
it has been {{.DaysWaited}} business days.
"""

[template.invoice]
body = "Invoice {{.Vars.number}} of {{.SentDateText}}"
`

// edit returns base with each (old, new) pair replaced once; it fails the
// test when old is missing, so a case cannot silently test nothing.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := base
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("base has no %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// markedLine returns the 1-based line holding "#<-".
func markedLine(t *testing.T, s string) int {
	t.Helper()
	for i, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "#<-") {
			return i + 1
		}
	}
	t.Fatal("case has no #<- marker")
	return 0
}

func TestBaseIsValid(t *testing.T) {
	if _, err := Parse("base.toml", []byte(base)); err != nil {
		t.Fatalf("base config:\n%v", err)
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name  string
		pairs []string // edits of base; the problem's line carries "#<-"
		key   string
		msg   string // substring of the problem
	}{
		{"syntax error", []string{`name = "maria"`, `name = "maria #<-`}, "account[1].name", "newlines"},
		{"unknown key", []string{"security = \"tls\"\n", "hots = \"x\" #<-\nsecurity = \"tls\"\n"}, "account[1].imap.hots", `unknown key (did you mean "host"?)`},
		{"unknown key in first of two", []string{`password_env = "FOLLOWUPD_TEST_PASSWORD"`, "password_env = \"FOLLOWUPD_TEST_PASSWORD\"\npasword = \"x\" #<-"}, "account[0].pasword", "unknown key"},
		{"table instead of array", []string{"[[rule.step]]\nafter = \"72h\"", "[rule.step] #<-\nafter = \"72h\""}, "rule[1].step", "write [[rule.step]], not [rule.step]"},
		{"summary lead not an address", []string{`calendar = "ru"`, "calendar = \"ru\"\n[summary]\nleads = [\"boss\"] #<-"}, "summary.leads[0]", `"boss" is not a plain e-mail address`},
		{"summary from unknown account", []string{`calendar = "ru"`, "calendar = \"ru\"\n[summary]\nfrom_account = \"olga\" #<-"}, "summary.from_account", `no account named "olga" (accounts: ivan@seller.example, maria)`},
		{"summary time", []string{`calendar = "ru"`, "calendar = \"ru\"\n[summary]\ntime = \"8.30\" #<-"}, "summary.time", `is not HH:MM`},
		{"summary unknown key", []string{`calendar = "ru"`, "calendar = \"ru\"\n[summary]\nlead = [\"a@b.c\"] #<-"}, "summary.lead", `did you mean "leads"`},
		{"unknown top-level key", []string{`calendar = "ru"`, `calender = "ru" #<-`}, "calender", `did you mean "calendar"`},
		{"bad security", []string{`security = "tls"`, `security = "ssl" #<-`}, "account[1].imap.security", `"ssl" is not one of tls, starttls, none`},
		{"bad security in inline table", []string{"[account.imap]\nhost = \"imap.seller.example\"\n\n[account.smtp]\nhost = \"smtp.seller.example\"\n\n[[account]]",
			"imap = { host = \"imap.seller.example\", security = \"ssl\" } #<-\n\n[account.smtp]\nhost = \"smtp.seller.example\"\n\n[[account]]"},
			"account[0].imap.security", `"ssl" is not one of`},
		{"bad delay", []string{`after = "5 business days"`, `after = "5 bussiness days" #<-`}, "rule[0].step[1].after", "unknown unit"},
		{"zero delay", []string{`after = "72h"`, `after = "0h" #<-`}, "rule[1].step[0].after", "positive"},
		{"bad regex", []string{`subject = ['(?i)offer', '(?i)КП']`, `subject = ['(?i)offer', '(?i)КП('] #<-`}, "rule[0].match.subject[1]", "bad regular expression"},
		{"missing template", []string{`template = "second"`, `template = "secnod" #<-`}, "rule[0].step[1].template", "no [template.secnod]"},
		{"none to a remote host", []string{`security = "starttls"`, `security = "none" #<-`}, "account[1].smtp.security", "clear text"},
		{"duplicate account", []string{`address = "maria@seller.example"`, `address = "Ivan@seller.example" #<-`}, "account[1].address", "already used by account[0] (line 4)"},
		{"duplicate rule", []string{`name = "invoice"`, `name = "offer" #<-`}, "rule[1].name", "already used"},
		{"bad address", []string{`address = "maria@seller.example"`, `address = "Maria <maria@seller.example>" #<-`}, "account[1].address", "not a plain e-mail address"},
		{"both passwords", []string{`password_file = "maria.pass"`, "password_file = \"maria.pass\"\npassword_env = \"X\" #<-"}, "account[1].password_env", "only one"},
		{"no password", []string{`password_file = "maria.pass"`, `display_name = "Maria"`, "[[account]]\nname", "[[account]] #<-\nname"}, "account[1].password_file", "required"},
		{"missing host", []string{"[account.smtp]\n" + `host = "smtp.seller.example"` + "\nsecurity", "[account.smtp] #<-\n" + `port = 25` + "\nsecurity"}, "account[1].smtp.host", "host is required"},
		{"wrong type", []string{`security = "starttls"`, "security = \"starttls\"\nport = \"587\" #<-"}, "account[1].smtp.port", `expected an integer, got string "587"`},
		{"bad zone", []string{`time_zone = "Europe/Moscow"`, `time_zone = "Europe/Moskva" #<-`}, "time_zone", "unknown time zone"},
		{"bad calendar", []string{`calendar = "ru"`, `calendar = "xx" #<-`}, "calendar", `unknown country calendar "xx"`},
		{"bad window", []string{`calendar = "ru"`, "calendar = \"ru\"\nsend_window = \"18:00-09:00\" #<-"}, "send_window", "start must be before end"},
		{"bad mode", []string{`name = "maria"`, "name = \"maria\"\nmode = \"manual\" #<-"}, "account[1].mode", "not one of auto, approve, dry-run"},
		{"bad auto_reply", []string{`name = "invoice"`, "name = \"invoice\"\nauto_reply = \"hold\" #<-"}, "rule[1].auto_reply", "not one of ignore, postpone"},
		{"bad glob", []string{`subject = ['(?i)offer', '(?i)КП']`, "subject = ['(?i)offer', '(?i)КП']\nattachment = [\"КП_[.pdf\"] #<-"}, "rule[0].match.attachment[0]", "bad file name pattern"},
		{"no steps", []string{"[[rule.step]]\nafter = \"72h\"\ntemplate = \"invoice\"\n", "", "[[rule]]\nname = \"invoice\"", "[[rule]] #<-\nname = \"invoice\""}, "rule[1].step", "at least one"},
		{"no criteria", []string{"[rule.match]\nsubject = ['(?i)invoice (?P<number>\\d+)']\n", "", "[[rule]]\nname = \"invoice\"", "[[rule]] #<-\nname = \"invoice\""}, "rule[1].match", "at least one criterion"},
		{"template parse error", []string{`body = "Hello {{.RecipientFirstName}}"`, `body = "Hello {{.RecipientFirstName}" #<-`}, "template.first.body", "template.first.body:1: bad character"},
		{"template unknown field", []string{"it has been {{.DaysWaited}}", "it has been {{.DaysWated}} #<-"}, "template.second.body", "DaysWated"},
		{"template capture the rule lacks", []string{`template = "first"`, `template = "invoice"`, `body = "Invoice {{.Vars.number}}`, `body = "Invoice {{.Vars.number}} #<-`}, "template.invoice.body", `rule "offer"`},
		{"template without body", []string{"[template.first]\n" + `body = "Hello {{.RecipientFirstName}}"`, "[template.first] #<-\n" + `subject = "Hi"`}, "template.first.body", "needs a body"},
		{"holiday and workday", []string{`calendar = "ru"`, "calendar = \"ru\"\nholidays = [2026-05-11]\nworkdays = [\"2026-05-11\"] #<-"}, "workdays[0]", "both"},
		{"bad date", []string{`calendar = "ru"`, "calendar = \"ru\"\nholidays = [\"2026-13-01\"] #<-"}, "holidays[0]", "not YYYY-MM-DD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := edit(t, tc.pairs...)
			line := markedLine(t, src)
			_, err := Parse("/etc/followupd.toml", []byte(src))
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, want *Errors", err)
			}
			for _, p := range errs.Problems {
				if p.Key == tc.key {
					if p.Line != line || p.File != "/etc/followupd.toml" || !strings.Contains(p.Msg, tc.msg) {
						t.Errorf("got %s\nwant /etc/followupd.toml:%d: %s: …%s…", p, line, tc.key, tc.msg)
					}
					return
				}
			}
			t.Errorf("no problem for key %s; got:\n%v", tc.key, err)
		})
	}
}

func TestCRLF(t *testing.T) {
	src := strings.ReplaceAll(edit(t, `security = "tls"`, `security = "ssl" #<-`), "\n", "\r\n")
	_, err := Parse("f.toml", []byte(src))
	want := fmt.Sprintf("f.toml:%d: account[1].imap.security:", markedLine(t, src))
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want %s…", err, want)
	}
	c, err := Parse("f.toml", []byte(strings.ReplaceAll(base, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Line("rule[1].step[0].template"); got != 49 {
		t.Errorf("Line = %d, want 49", got)
	}
}

func TestProblemsCollected(t *testing.T) {
	src := edit(t,
		`security = "tls"`, `security = "ssl"`,
		`after = "5 business days"`, `after = "5 bussiness days"`,
		`'(?i)КП'`, `'(?i)КП('`,
		`template = "first"`, `template = "nope"`,
		`calendar = "ru"`, "calendar = \"ru\"\nfoo = 1",
	)
	_, err := Parse("f.toml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"f.toml:3: foo: unknown key",
		`f.toml:22: account[1].imap.security: "ssl" is not one of tls, starttls, none`,
		"f.toml:32: rule[0].match.subject[1]: bad regular expression",
		`f.toml:36: rule[0].step[0].template: no [template.nope]`,
		`f.toml:39: rule[0].step[1].after: delay "5 bussiness days": unknown unit`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("problem %d:\ngot  %s\nwant %s…", i, lines[i], want[i])
		}
	}
}

func TestNoAccount(t *testing.T) {
	_, err := Parse("f.toml", []byte("state_dir = \"/tmp\"\n"))
	if err == nil || !strings.Contains(err.Error(), "f.toml: account: at least one [[account]] is required") {
		t.Errorf("got %v", err)
	}
}

func TestInsecureAllowed(t *testing.T) {
	for _, tc := range []struct {
		name, pairs0, pairs1 string
		ok                   bool
	}{
		{"localhost", `host = "smtp.seller.example"` + "\nsecurity = \"starttls\"", `host = "localhost"` + "\nsecurity = \"none\"", true},
		{"127.0.0.2", `host = "smtp.seller.example"` + "\nsecurity = \"starttls\"", `host = "127.0.0.2"` + "\nsecurity = \"none\"", true},
		{"::1", `host = "smtp.seller.example"` + "\nsecurity = \"starttls\"", `host = "::1"` + "\nsecurity = \"none\"", true},
		{"remote", `host = "smtp.seller.example"` + "\nsecurity = \"starttls\"", `host = "10.0.0.1"` + "\nsecurity = \"none\"", false},
		{"remote allowed", `calendar = "ru"`, "calendar = \"ru\"\nallow_insecure = true\n[[account]]\naddress=\"x@y.example\"\npassword_env=\"X\"\nimap={host=\"mail.example\",security=\"none\"}\nsmtp={host=\"mail.example\",security=\"none\"}\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(edit(t, tc.pairs0, tc.pairs1)))
			if (err == nil) != tc.ok {
				t.Errorf("ok = %v, want %v: %v", err == nil, tc.ok, err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load("testdata/minimal.toml")
	if err != nil {
		t.Fatal(err)
	}
	a := &c.Accounts[0]
	r := &c.Rules[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"state_dir", c.StateDir, "/var/lib/followupd"},
		{"time_zone", c.TimeZone.Location, time.UTC},
		{"lookback", c.Lookback, Delay{Duration: 14 * 24 * time.Hour}},
		{"max_overdue", c.MaxOverdue, Delay{BusinessDays: 2}},
		{"log_level", c.LogLevel, "info"},
		{"colleague_answers", *c.ColleagueAnswers, true},
		{"any_message_from_recipient", *c.AnyMessageFromRecipient, true},
		{"account name", a.Name, "ivan@seller.example"},
		{"username", a.Username, "ivan@seller.example"},
		{"imap security", a.IMAP.Security, SecurityTLS},
		{"imap port", a.IMAP.Port, 993},
		{"smtp port (starttls)", a.SMTP.Port, 587},
		{"max_per_hour", a.MaxPerHour, 20},
		{"mode", a.Mode, ModeAuto},
		{"stop_keyword", a.Folders.StopKeyword, "$FollowupStop"},
		{"kind", r.Kind, "offer"},
		{"auto_reply", r.AutoReply, "ignore"},
		{"max_postpone", r.MaxPostpone, Delay{Duration: 14 * 24 * time.Hour}},
		{"template subject", c.Template("first").Subject, "Re: {{.Subject}}"},
		{"location", c.Location(a), time.UTC},
		{"calendar code", c.CalendarCode(a), ""},
		{"window", c.Window(a).Set, false},
		{"rule mode", c.RuleMode(a, r), ModeAuto},
		{"lookup account", c.Account("ivan@seller.example") == a, true},
		{"lookup rule", c.Rule("offer") == r, true},
		{"lookup missing", c.Rule("nope") == nil && c.Account("nope") == nil && c.Template("nope") == nil, true},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	for _, tc := range []struct {
		sec  Security
		imap int
		smtp int
	}{{SecurityTLS, 993, 465}, {SecurityStartTLS, 143, 587}, {SecurityNone, 143, 25}} {
		c := &Config{Accounts: []Account{{Address: "a@localhost", IMAP: Server{Security: tc.sec}, SMTP: Server{Security: tc.sec}}}}
		c.applyDefaults()
		if a := c.Accounts[0]; a.IMAP.Port != tc.imap || a.SMTP.Port != tc.smtp {
			t.Errorf("%s: ports imap %d smtp %d, want %d %d", tc.sec, a.IMAP.Port, a.SMTP.Port, tc.imap, tc.smtp)
		}
	}
}

func TestEffective(t *testing.T) {
	t.Setenv("FOLLOWUPD_MARIA_PASSWORD", "x")
	c, err := Load("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	ivan, maria := c.Account("ivan"), c.Account("maria")
	if got := c.Location(ivan).String(); got != "Europe/Moscow" {
		t.Errorf("ivan zone %s", got)
	}
	if got := c.Location(maria).String(); got != "Europe/Berlin" {
		t.Errorf("maria zone %s", got)
	}
	if c.CalendarCode(ivan) != "ru" || c.CalendarCode(maria) != "de" {
		t.Errorf("calendars %q %q", c.CalendarCode(ivan), c.CalendarCode(maria))
	}
	if w := c.Window(maria); w.String() != "08:30-17:00" {
		t.Errorf("maria window %s", w)
	}
	offer := c.Rule("offer")
	for _, tc := range []struct {
		acct, rule Mode
		want       Mode
	}{
		{ModeAuto, "", ModeAuto},
		{ModeAuto, ModeApprove, ModeApprove},
		{ModeApprove, ModeAuto, ModeApprove},
		{ModeDryRun, ModeAuto, ModeDryRun},
		{ModeApprove, ModeDryRun, ModeDryRun},
	} {
		a, r := *ivan, *offer
		a.Mode, r.Mode = tc.acct, tc.rule
		if got := c.RuleMode(&a, &r); got != tc.want {
			t.Errorf("RuleMode(%s, %s) = %s, want %s", tc.acct, tc.rule, got, tc.want)
		}
	}
	inv := c.Rule("invoice")
	if caps := inv.Captures(); len(caps) != 1 || caps[0] != "number" {
		t.Errorf("invoice captures %v", caps)
	}
	m := inv.Match.Subject[0].FindStringSubmatch("Счёт № 2026/117 на оплату")
	if m == nil || m[inv.Match.Subject[0].SubexpIndex("number")] != "2026/117" {
		t.Errorf("invoice subject regex: %q", m)
	}
	if !c.Rule("offer").Match.Subject[0].MatchString("КП на поставку") {
		t.Error("offer regex misses КП")
	}
	d := sampleFor(inv, 1)
	var subj, body strings.Builder
	tm := c.Template("invoice_ru_1")
	if err := tm.SubjectT.Execute(&subj, d); err != nil || subj.String() != "Re: Commercial offer No. 42" {
		t.Errorf("subject: %q %v", subj.String(), err)
	}
	if err := tm.BodyT.Execute(&body, d); err != nil || !strings.Contains(body.String(), "№ 12345 от 12.05.2026") {
		t.Errorf("body: %q %v", body.String(), err)
	}
}

func TestDelay(t *testing.T) {
	tests := []struct {
		in   string
		want Delay
		err  bool
	}{
		{"72h", Delay{Duration: 72 * time.Hour}, false},
		{"90m", Delay{Duration: 90 * time.Minute}, false},
		{"1h30m", Delay{Duration: 90 * time.Minute}, false},
		{"3 business days", Delay{BusinessDays: 3}, false},
		{"1 business day", Delay{BusinessDays: 1}, false},
		{"  5  Business   Days ", Delay{BusinessDays: 5}, false},
		{"2 days", Delay{Duration: 48 * time.Hour}, false},
		{"1 day", Delay{Duration: 24 * time.Hour}, false},
		{"2 weeks", Delay{Duration: 14 * 24 * time.Hour}, false},
		{"0h", Delay{}, false},
		{"", Delay{}, true},
		{"3", Delay{}, true},
		{"-1h", Delay{}, true},
		{"-2 days", Delay{}, true},
		{"3 bussiness days", Delay{}, true},
		{"three days", Delay{}, true},
		{"99999999999 days", Delay{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var d Delay
			err := d.UnmarshalText([]byte(tc.in))
			if (err != nil) != tc.err || d != tc.want {
				t.Errorf("got %+v, %v; want %+v, error %v", d, err, tc.want, tc.err)
			}
			if err == nil {
				var back Delay
				if err := back.UnmarshalText([]byte(d.String())); err != nil || back != d {
					t.Errorf("round trip via %q: %+v, %v", d.String(), back, err)
				}
			}
		})
	}
}

func TestWindow(t *testing.T) {
	tests := []struct {
		in   string
		want Window
		err  bool
		open string // "15:04" times inside
		shut string // times outside
	}{
		{"09:00-18:00", Window{Start: 9 * 60, End: 18 * 60, Set: true}, false, "09:00 12:30 17:59", "08:59 18:00 23:00"},
		{" 9:30 - 17:00 ", Window{Start: 9*60 + 30, End: 17 * 60, Set: true}, false, "09:30", "09:29 17:00"},
		{"00:00-24:00", Window{Start: 0, End: 24 * 60, Set: true}, false, "00:00 23:59", ""},
		{"", Window{}, false, "00:00 12:00", ""},
		{"18:00-09:00", Window{}, true, "", ""},
		{"09:00-09:00", Window{}, true, "", ""},
		{"09:00", Window{}, true, "", ""},
		{"9-18", Window{}, true, "", ""},
		{"09:60-18:00", Window{}, true, "", ""},
		{"24:00-24:00", Window{}, true, "", ""},
		{"09:00-25:00", Window{}, true, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var w Window
			err := w.UnmarshalText([]byte(tc.in))
			if (err != nil) != tc.err || w != tc.want {
				t.Fatalf("got %+v, %v; want %+v, error %v", w, err, tc.want, tc.err)
			}
			at := func(s string) time.Time {
				tm, err := time.Parse("15:04", s)
				if err != nil {
					t.Fatal(err)
				}
				return tm
			}
			for _, s := range strings.Fields(tc.open) {
				if !w.Contains(at(s)) {
					t.Errorf("%s not inside", s)
				}
			}
			for _, s := range strings.Fields(tc.shut) {
				if w.Contains(at(s)) {
					t.Errorf("%s inside", s)
				}
			}
		})
	}
}

func TestValues(t *testing.T) {
	var l Location
	if err := l.UnmarshalText([]byte("Local")); err == nil {
		t.Error("Local accepted")
	}
	var d Date
	if err := d.UnmarshalText([]byte("2026-02-30")); err == nil {
		t.Error("2026-02-30 accepted")
	}
	var s Security
	if err := s.UnmarshalText([]byte("ssl")); err == nil || !strings.Contains(err.Error(), "hint") {
		t.Errorf("ssl: %v", err)
	}
	var r Regexp
	if err := r.UnmarshalText(nil); err == nil {
		t.Error("empty regexp accepted")
	}
}

func TestPassword(t *testing.T) {
	dir := t.TempDir()
	creds := t.TempDir()
	write := func(d, name, content string) {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(dir, "plain", "s3cret\n")
	write(dir, "crlf", "s3cret\r\n")
	write(dir, "spaces", " s3 cret \n")
	write(dir, "empty", "\n")
	write(creds, "cred.pass", "fromcreds")
	t.Setenv("FOLLOWUPD_PW", "envpw")
	t.Setenv("CREDENTIALS_DIRECTORY", creds)

	tests := []struct {
		name   string
		acct   Account
		want   string
		errHas string
	}{
		{"file", Account{PasswordFile: filepath.Join(dir, "plain")}, "s3cret", ""},
		{"crlf", Account{PasswordFile: filepath.Join(dir, "crlf")}, "s3cret", ""},
		{"spaces kept", Account{PasswordFile: filepath.Join(dir, "spaces")}, " s3 cret ", ""},
		{"credentials directory", Account{PasswordFile: "cred.pass"}, "fromcreds", ""},
		{"env", Account{PasswordEnv: "FOLLOWUPD_PW"}, "envpw", ""},
		{"env unset", Account{PasswordEnv: "FOLLOWUPD_NOPE"}, "", "FOLLOWUPD_NOPE is not set"},
		{"file missing", Account{PasswordFile: filepath.Join(dir, "nope")}, "", "password_file"},
		{"empty file", Account{PasswordFile: filepath.Join(dir, "empty")}, "", "is empty"},
		{"absolute not in creds", Account{PasswordFile: "/nonexistent/cred.pass"}, "", "password_file"},
		{"none", Account{}, "", "no password_file"},
		{"both", Account{PasswordFile: "x", PasswordEnv: "y"}, "", "both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.acct.Name = "ivan"
			got, err := tc.acct.Password()
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), "account ivan") {
					t.Errorf("err = %v, want one naming account ivan and %q", err, tc.errHas)
				}
				if err != nil && strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestCheckPasswords(t *testing.T) {
	t.Setenv("FOLLOWUPD_TEST_PASSWORD", "")
	c, err := Parse("f.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", t.TempDir())
	err = c.CheckPasswords()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"f.toml:6: account[0].password_env:", "f.toml:17: account[1].password_file:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestCAFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a cert"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{bad, "no PEM certificate"},
		{filepath.Join(dir, "missing.pem"), "cannot read"},
	} {
		src := edit(t, `security = "tls"`, `security = "tls"`+"\nca_file = \""+tc.file+"\" #<-")
		_, err := Parse("f.toml", []byte(src))
		want := "account[1].imap.ca_file: " + tc.want
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

func TestSummaryDefaults(t *testing.T) {
	c, err := Parse("base.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	sm := c.SummaryMail
	if sm.Enabled || sm.Time == nil || *sm.Time != DefaultSummaryTime || sm.Senders == nil || !*sm.Senders || len(sm.Leads) != 0 {
		t.Errorf("defaults: %+v", sm)
	}
	if a := c.SummaryAccount(); a == nil || a.Name != "ivan@seller.example" {
		t.Errorf("SummaryAccount = %v, want the first account", a)
	}
	c, err = Parse("base.toml", []byte(edit(t, `calendar = "ru"`, "calendar = \"ru\"\n[summary]\nenabled = true\ntime = \"07:05\"\nsenders = false\nleads = [\" Boss@Seller.Example \"]\nfrom_account = \"maria\"")))
	if err != nil {
		t.Fatal(err)
	}
	sm = c.SummaryMail
	if !sm.Enabled || sm.Time.String() != "07:05" || *sm.Senders || len(sm.Leads) != 1 || sm.Leads[0] != "boss@seller.example" || c.SummaryAccount().Name != "maria" {
		t.Errorf("parsed: %+v (time %s)", sm, sm.Time)
	}
}

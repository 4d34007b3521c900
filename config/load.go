package config

import (
	"errors"
	"fmt"
	"net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults applied by Parse.
const (
	DefaultStateDir    = "/var/lib/followupd"
	DefaultMaxPerHour  = 20
	DefaultStopKeyword = "$FollowupStop"
	DefaultLogLevel    = "info"
	DefaultAutoReply   = "ignore"
)

var (
	// DefaultLookback is how far back the first start looks for offers.
	DefaultLookback = Delay{Duration: 14 * day}
	// DefaultMaxOverdue is how late a step may still be sent.
	DefaultMaxOverdue = Delay{BusinessDays: 2}
	// DefaultMaxPostpone caps how long an auto-reply holds a follow-up.
	DefaultMaxPostpone = Delay{Duration: 14 * day}
)

// DefaultControlSocket is the control socket's default path: in systemd's
// runtime directory ($RUNTIME_DIRECTORY, the first when several) when set,
// else in the state directory.
func DefaultControlSocket(stateDir string) string {
	if rd, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); rd != "" {
		return filepath.Join(rd, "control.sock")
	}
	return filepath.Join(stateDir, "control.sock")
}

// Load reads, parses and checks the configuration file at path. An
// unreadable file is a plain error; problems in it are an *Errors, returned
// together with the configuration as far as it could be built.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses and checks data as the configuration file path (used in
// messages and to resolve a relative ca_file). It applies the defaults and
// collects every problem into an *Errors. The returned *Config is non-nil
// unless the TOML syntax itself is broken; it must not be used when the
// error is non-nil.
//
// Parse reads ca_file to check it; it does not read passwords (see
// Account.Password and CheckPasswords): the file is often checked by
// someone who cannot see the secrets.
func Parse(path string, data []byte) (*Config, error) {
	src := string(data)
	lines := indexLines(src)
	ps := newProblems(path, lines)

	var raw map[string]any
	if _, err := toml.Decode(src, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			// LastKey has no array indices; the index knows the keys
			// written before the broken line.
			key := lines.keyAt(pe.Position.Line)
			if key == "" {
				key = pe.LastKey
			}
			ps.addLine(pe.Position.Line, key, "%s", pe.Message)
		} else {
			ps.addLine(0, "", "%s", err)
		}
		return nil, ps.err()
	}

	c := &Config{File: path, lines: lines}
	d := &decoder{ps: ps}
	d.structure("", raw, reflect.ValueOf(c).Elem())
	c.applyDefaults()
	c.check(ps, filepath.Dir(path))
	compileTemplates(c, ps, strings.Split(src, "\n"))
	return c, ps.err()
}

// applyDefaults fills unset values. It runs after decoding and before the
// checks, so the checks see effective values.
func (c *Config) applyDefaults() {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.ControlSocket == "" {
		c.ControlSocket = DefaultControlSocket(c.StateDir)
	}
	if c.TimeZone.Location == nil {
		c.TimeZone.Location = time.UTC
	}
	if c.Lookback.IsZero() {
		c.Lookback = DefaultLookback
	}
	if c.MaxOverdue.IsZero() {
		c.MaxOverdue = DefaultMaxOverdue
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.ColleagueAnswers == nil {
		c.ColleagueAnswers = ptr(true)
	}
	if c.AnyMessageFromRecipient == nil {
		c.AnyMessageFromRecipient = ptr(true)
	}
	c.Calendar = strings.ToLower(strings.TrimSpace(c.Calendar))
	for i, d := range c.PublicDomains {
		c.PublicDomains[i] = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(d)), "@")
	}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		a.Address = strings.ToLower(strings.TrimSpace(a.Address))
		if a.Name == "" {
			a.Name = a.Address
		}
		if a.Username == "" {
			a.Username = a.Address
		}
		if a.IMAP.Security == "" {
			a.IMAP.Security = SecurityTLS
		}
		if a.SMTP.Security == "" {
			a.SMTP.Security = SecurityTLS
		}
		if a.IMAP.Port == 0 {
			a.IMAP.Port = 143
			if a.IMAP.Security == SecurityTLS {
				a.IMAP.Port = 993
			}
		}
		if a.SMTP.Port == 0 {
			switch a.SMTP.Security {
			case SecurityTLS:
				a.SMTP.Port = 465
			case SecurityStartTLS:
				a.SMTP.Port = 587
			default:
				a.SMTP.Port = 25
			}
		}
		if a.MaxPerHour == 0 {
			a.MaxPerHour = DefaultMaxPerHour
		}
		if a.Mode == "" {
			a.Mode = ModeAuto
		}
		if a.Folders.StopKeyword == "" {
			a.Folders.StopKeyword = DefaultStopKeyword
		}
		a.Calendar = strings.ToLower(strings.TrimSpace(a.Calendar))
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Kind == "" {
			r.Kind = r.Name
		}
		if r.AutoReply == "" {
			r.AutoReply = DefaultAutoReply
		}
		r.AutoReply = strings.ToLower(r.AutoReply)
		if r.MaxPostpone.IsZero() {
			r.MaxPostpone = DefaultMaxPostpone
		}
		m := &r.Match
		for j, g := range m.Attachment {
			m.Attachment[j] = strings.ToLower(g)
		}
		for j, t := range m.AttachmentType {
			m.AttachmentType[j] = strings.ToLower(strings.TrimSpace(t))
		}
		for j, s := range m.RecipientInclude {
			m.RecipientInclude[j] = strings.ToLower(strings.TrimSpace(s))
		}
		for j, s := range m.RecipientExclude {
			m.RecipientExclude[j] = strings.ToLower(strings.TrimSpace(s))
		}
		if len(m.Header) > 0 {
			h := make(map[string]Regexp, len(m.Header))
			for k, re := range m.Header {
				h[textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k))] = re
			}
			m.Header = h
		}
	}
	if c.Templates == nil {
		c.Templates = map[string]Template{}
	}
	sm := &c.SummaryMail
	if sm.Time == nil {
		sm.Time = ptr(DefaultSummaryTime)
	}
	if sm.Senders == nil {
		sm.Senders = ptr(true)
	}
	for i, l := range sm.Leads {
		sm.Leads[i] = strings.ToLower(strings.TrimSpace(l))
	}
	sm.FromAccount = strings.TrimSpace(sm.FromAccount)
}

func ptr[T any](v T) *T { return &v }

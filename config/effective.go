package config

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Line returns the line of the file where key ("account[1].smtp.host") is
// written, or that of the nearest enclosing table; 0 when unknown. It lets
// later stages report a problem found at run time (a calendar that fails to
// build, a template that fails to render) as FILE:LINE: key.
func (c *Config) Line(key string) int { return c.lines.line(key) }

// Account returns the account named name, or nil.
func (c *Config) Account(name string) *Account {
	for i := range c.Accounts {
		if c.Accounts[i].Name == name {
			return &c.Accounts[i]
		}
	}
	return nil
}

// Rule returns the rule named name, or nil.
func (c *Config) Rule(name string) *Rule {
	for i := range c.Rules {
		if c.Rules[i].Name == name {
			return &c.Rules[i]
		}
	}
	return nil
}

// Template returns the template named name, or nil. The result is a copy;
// its parsed templates are shared and safe for concurrent Execute.
func (c *Config) Template(name string) *Template {
	t, ok := c.Templates[name]
	if !ok {
		return nil
	}
	return &t
}

// Location returns the account's time zone: its own time_zone, else the
// top-level one (default UTC). Never nil.
func (c *Config) Location(a *Account) *time.Location {
	if a != nil && a.TimeZone.Location != nil {
		return a.TimeZone.Location
	}
	if c.TimeZone.Location != nil {
		return c.TimeZone.Location
	}
	return time.UTC
}

// CalendarCode returns the account's holiday country code, lower case:
// its own calendar, else the top-level one; "" means weekends only (also
// when set to "none").
func (c *Config) CalendarCode(a *Account) string {
	code := c.Calendar
	if a != nil && a.Calendar != "" {
		code = a.Calendar
	}
	if code == CalendarNone {
		return ""
	}
	return code
}

// Window returns the account's send window: its own, else the top-level
// one. An unset window is always open.
func (c *Config) Window(a *Account) Window {
	if a != nil && a.SendWindow.Set {
		return a.SendWindow
	}
	return c.SendWindow
}

// RuleMode returns how a rule's reminders from account a are delivered:
// the more cautious of the account's mode and the rule's (dry-run over
// approve over auto), so a rule can hold back an account but never make a
// dry-run account send.
func (c *Config) RuleMode(a *Account, r *Rule) Mode {
	m := ModeAuto
	if a != nil && a.Mode != "" {
		m = a.Mode
	}
	if r != nil && r.Mode != "" && r.Mode.cautious() > m.cautious() {
		m = r.Mode
	}
	return m
}

// Summary writes a short human description of the accounts and rules, as
// `followupd check` prints it for a valid configuration.
func (c *Config) Summary(w io.Writer) {
	fmt.Fprintf(w, "config %s: %d account(s), %d rule(s), %d template(s)\n",
		c.File, len(c.Accounts), len(c.Rules), len(c.Templates))
	if sm := c.SummaryMail; sm.Enabled {
		fmt.Fprintf(w, "daily summary at %s on business days (each sender's in their account's time zone; the team's in %s): senders %t, leads %s, team summary from %s\n",
			sm.Time, c.Location(nil), sm.Senders != nil && *sm.Senders, strings.Join(sm.Leads, ", "), c.SummaryAccount().Name)
	}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		fmt.Fprintf(w, "account %s <%s>: imap %s:%d %s, smtp %s:%d %s, mode %s\n",
			a.Name, a.Address, a.IMAP.Host, a.IMAP.Port, a.IMAP.Security,
			a.SMTP.Host, a.SMTP.Port, a.SMTP.Security, a.Mode)
		cal := c.CalendarCode(a)
		if cal == "" {
			cal = "weekends only"
		}
		win := c.Window(a).String()
		if win == "" {
			win = "any time"
		}
		fmt.Fprintf(w, "  time zone %s, calendar %s, send window %s, at most %d/hour\n",
			c.Location(a), cal, win, a.MaxPerHour)
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		steps := make([]string, len(r.Steps))
		for j, s := range r.Steps {
			steps[j] = fmt.Sprintf("%s → %s", s.After, s.Template)
		}
		fmt.Fprintf(w, "rule %s (%s): %d criteria; steps: %s\n",
			r.Name, r.Kind, r.Match.count(), strings.Join(steps, ", "))
	}
}

// count returns the number of criteria entries.
func (m *Match) count() int {
	return len(m.Subject) + len(m.Body) + len(m.Attachment) + len(m.AttachmentType) +
		len(m.RecipientInclude) + len(m.RecipientExclude) + len(m.Header)
}

// SummaryAccount is the account that sends the team summary: summary.from_account,
// else the first account. Nil only without accounts.
func (c *Config) SummaryAccount() *Account {
	if a := c.Account(c.SummaryMail.FromAccount); a != nil {
		return a
	}
	if len(c.Accounts) > 0 {
		return &c.Accounts[0]
	}
	return nil
}

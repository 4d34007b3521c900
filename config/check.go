package config

import (
	"crypto/x509"
	"net"
	"net/mail"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"followupd/calendar"
)

// CalendarNone, as a calendar value, means weekends only; it lets an
// account opt out of the top-level country calendar.
const CalendarNone = "none"

// check runs the cross-field checks on a decoded configuration with
// defaults applied. dir resolves a relative ca_file.
func (c *Config) check(ps *problems, dir string) {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		ps.addf("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil || port == "" {
			ps.addf("metrics_listen", "%q is not HOST:PORT (e.g. \"127.0.0.1:9154\")", c.MetricsListen)
		}
	}
	// sun_path holds 108 bytes on Linux, including the terminating NUL.
	if len(c.ControlSocket) > 107 {
		ps.addf("control_socket", "%q is longer than a Unix socket path may be (107 bytes)", c.ControlSocket)
	}
	checkCalendar(ps, "calendar", c.Calendar)
	checkDays(ps, c.Holidays, c.Workdays)
	for i, d := range c.PublicDomains {
		if d == "" || !strings.Contains(d, ".") || strings.ContainsAny(d, " @\t") {
			ps.addf(indexPath("public_domains", i), "%q is not a domain", d)
		}
	}
	c.checkAccounts(ps, dir)
	c.checkRules(ps)
	c.checkSummary(ps)
}

// checkSummary checks [summary]: leads are addresses, from_account names an account.
func (c *Config) checkSummary(ps *problems) {
	sm := &c.SummaryMail
	for i, l := range sm.Leads {
		if !validAddress(l) {
			ps.addf(indexPath("summary.leads", i), "%q is not a plain e-mail address", l)
		}
	}
	if sm.FromAccount != "" && c.Account(sm.FromAccount) == nil {
		var names []string
		for _, a := range c.Accounts {
			names = append(names, a.Name)
		}
		ps.addf("summary.from_account", "no account named %q (accounts: %s)", sm.FromAccount, strings.Join(names, ", "))
	}
	if sm.Time != nil && *sm.Time >= 24*60 {
		ps.addf("summary.time", "24:00 is not a time of day")
	}
}

func checkCalendar(ps *problems, key, code string) {
	if code == CalendarNone {
		return
	}
	if !calendar.Supported(code) {
		ps.addf(key, "unknown country calendar %q (supported: %s, or %q for weekends only)",
			code, strings.Join(calendar.Countries(), ", "), CalendarNone)
	}
}

func checkDays(ps *problems, holidays, workdays []Date) {
	off := map[Date]bool{}
	for _, d := range holidays {
		off[d] = true
	}
	for i, d := range workdays {
		if off[d] {
			ps.addf(indexPath("workdays", i), "%s is listed both in holidays and in workdays", d)
		}
	}
}

func (c *Config) checkAccounts(ps *problems, dir string) {
	if len(c.Accounts) == 0 {
		ps.addLine(0, "account", "at least one [[account]] is required")
		return
	}
	names := map[string]int{}
	addrs := map[string]int{}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		base := indexPath("account", i)
		key := func(k string) string { return base + "." + k }

		switch {
		case a.Address == "":
			ps.addf(key("address"), "address is required")
		case !validAddress(a.Address):
			ps.addf(key("address"), "%q is not a plain e-mail address (put the name in display_name)", a.Address)
		default:
			if j, dup := addrs[a.Address]; dup {
				ps.addf(key("address"), "address %q is already used by account[%d] (line %d)",
					a.Address, j, ps.lines.line(indexPath("account", j)))
			} else {
				addrs[a.Address] = i
			}
		}
		if j, dup := names[a.Name]; dup && !ps.has(key("address")) {
			ps.addf(key("name"), "name %q is already used by account[%d] (line %d)",
				a.Name, j, ps.lines.line(indexPath("account", j)))
		} else if !dup {
			names[a.Name] = i
		}
		if strings.ContainsAny(a.DisplayName, "\r\n") {
			ps.addf(key("display_name"), "must be one line")
		}

		switch {
		case a.PasswordFile == "" && a.PasswordEnv == "":
			ps.addf(key("password_file"), "one of password_file or password_env is required")
		case a.PasswordFile != "" && a.PasswordEnv != "":
			ps.addf(key("password_env"), "set only one of password_file and password_env")
		}

		c.checkServer(ps, key("imap"), &a.IMAP, dir)
		c.checkServer(ps, key("smtp"), &a.SMTP, dir)

		if a.MaxPerHour < 0 {
			ps.addf(key("max_per_hour"), "must not be negative")
		}
		if kw := a.Folders.StopKeyword; !validKeyword(kw) {
			ps.addf(key("folders.stop_keyword"), "%q is not an IMAP keyword (letters, digits, $ and the like; no spaces, no leading \\)", kw)
		}
		checkCalendar(ps, key("calendar"), a.Calendar)
	}
}

func (c *Config) checkServer(ps *problems, base string, s *Server, dir string) {
	if strings.TrimSpace(s.Host) == "" {
		ps.addf(base+".host", "host is required")
	} else if strings.ContainsAny(s.Host, " /\t") {
		ps.addf(base+".host", "%q is not a host name", s.Host)
	}
	if s.Port < 1 || s.Port > 65535 {
		ps.addf(base+".port", "port %d is not between 1 and 65535", s.Port)
	}
	if s.Security == SecurityNone && s.Host != "" && !isLoopback(s.Host) && !c.AllowInsecure {
		ps.addf(base+".security", "\"none\" would send the password in clear text to %s; use tls or starttls (hint: set allow_insecure = true at the top level if that is really meant)", s.Host)
	}
	if s.CAFile != "" {
		if !filepath.IsAbs(s.CAFile) {
			s.CAFile = filepath.Join(dir, s.CAFile)
		}
		pem, err := os.ReadFile(s.CAFile)
		switch {
		case err != nil:
			ps.addf(base+".ca_file", "cannot read: %s", err)
		case !x509.NewCertPool().AppendCertsFromPEM(pem):
			ps.addf(base+".ca_file", "no PEM certificate in %s", s.CAFile)
		}
	}
}

func (c *Config) checkRules(ps *problems) {
	if len(c.Rules) == 0 {
		ps.addLine(0, "rule", "at least one [[rule]] is required; without one nothing is tracked")
		return
	}
	names := map[string]int{}
	for i := range c.Rules {
		r := &c.Rules[i]
		base := indexPath("rule", i)
		key := func(k string) string { return base + "." + k }
		if strings.TrimSpace(r.Name) == "" {
			ps.addf(key("name"), "name is required")
		} else if j, dup := names[r.Name]; dup {
			ps.addf(key("name"), "name %q is already used by rule[%d] (line %d)", r.Name, j, ps.lines.line(indexPath("rule", j)))
		} else {
			names[r.Name] = i
		}
		switch r.AutoReply {
		case "ignore", "postpone":
		default:
			ps.addf(key("auto_reply"), "%q is not one of ignore, postpone", r.AutoReply)
		}
		checkMatch(ps, key("match"), &r.Match)

		if len(r.Steps) == 0 {
			ps.addf(key("step"), "a rule needs at least one [[rule.step]]")
		}
		for j, s := range r.Steps {
			sk := indexPath(key("step"), j)
			if s.After.IsZero() && !ps.has(sk+".after") {
				ps.addf(sk+".after", "after must be a positive delay (\"3 business days\", \"72h\")")
			}
			switch {
			case s.Template == "":
				ps.addf(sk+".template", "template is required")
			default:
				if _, ok := c.Templates[s.Template]; !ok {
					ps.addf(sk+".template", "no [template.%s] (defined: %s)", keyPart(s.Template), templateNames(c))
				}
			}
		}
	}
}

func checkMatch(ps *problems, base string, m *Match) {
	if len(m.Subject) == 0 && len(m.Body) == 0 && len(m.Attachment) == 0 &&
		len(m.AttachmentType) == 0 && len(m.Header) == 0 && len(m.RecipientInclude) == 0 {
		ps.addf(base, "a rule needs at least one criterion (subject, body, attachment, attachment_type, header or recipient_include); without one it would track every sent message")
	}
	for i, g := range m.Attachment {
		if g == "" {
			ps.addf(indexPath(base+".attachment", i), "empty file name pattern")
		} else if _, err := path.Match(g, ""); err != nil {
			ps.addf(indexPath(base+".attachment", i), "bad file name pattern %q: %s", g, err)
		}
	}
	for i, t := range m.AttachmentType {
		typ, sub, ok := strings.Cut(t, "/")
		if !ok || typ == "" || sub == "" || strings.ContainsAny(t, " ;") {
			ps.addf(indexPath(base+".attachment_type", i), "%q is not a content type like \"application/pdf\"", t)
		}
	}
	checkRecipients(ps, base+".recipient_include", m.RecipientInclude)
	checkRecipients(ps, base+".recipient_exclude", m.RecipientExclude)
}

func checkRecipients(ps *problems, key string, list []string) {
	for i, s := range list {
		ok := s != "" && !strings.ContainsAny(s, " \t<>,")
		if ok && strings.Contains(strings.TrimPrefix(s, "@"), "@") {
			ok = validAddress(s)
		} else if ok {
			ok = strings.Contains(s, ".")
		}
		if !ok {
			ps.addf(indexPath(key, i), "%q is not an address or a domain (\"@example.com\" or \"example.com\")", s)
		}
	}
}

func templateNames(c *Config) string {
	if len(c.Templates) == 0 {
		return "none"
	}
	var names []string
	for n := range c.Templates {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// validAddress reports whether s is a bare addr-spec.
func validAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && strings.EqualFold(a.Address, s) && strings.Contains(s, "@")
}

// isLoopback reports whether host names this machine: localhost,
// 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// validKeyword reports whether kw can be an IMAP flag keyword (RFC 9051
// flag-keyword = atom; atom excludes specials and CTLs).
func validKeyword(kw string) bool {
	if kw == "" || kw[0] == '\\' {
		return false
	}
	for _, r := range kw {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`(){%*"\]`, r) {
			return false
		}
	}
	return true
}

package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"net/textproto"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrMalformed marks a header (or MIME structure) that could only be read in
// part. Parse and ParseHeader return it wrapped, together with the Record
// holding everything that did parse; callers may use the Record and log the
// error.
var ErrMalformed = errors.New("message: malformed")

// field is one unfolded header field as written (value not yet decoded).
type field struct {
	key   string // canonical
	value string
}

// splitHeader reads header fields from raw up to the first empty line and
// returns them with the rest (the body). Continuation lines are unfolded.
// QUIRK: lines without a colon (a garbled fold, an mbox "From " line) are
// skipped and reported, instead of ending the header as net/textproto does.
//
// The header block is converted to one string and every field value is a
// piece of it (one allocation instead of one per field); a key in
// HeaderFields' spelling or canonical form is the interned canonical key.
func splitHeader(raw []byte) (fields []field, body []byte, err error) {
	// No header goes past the first empty line (see below), so convert
	// only up to it.
	hlen := len(raw)
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		hlen = i + 1
	}
	if i := bytes.Index(raw[:hlen], []byte("\n\r\n")); i >= 0 {
		hlen = i + 1
	}
	hs := string(raw[:hlen])
	fields = make([]field, 0, 16)
	var bad []string
	pos := 0  // offset of the next line in raw
	cur := -1 // index in fields of the field being unfolded, or -1
	for pos < len(raw) {
		var line string
		next := len(raw)
		if pos < hlen {
			if i := strings.IndexByte(hs[pos:], '\n'); i >= 0 {
				line, next = hs[pos:pos+i], pos+i+1
			} else {
				line = hs[pos:]
				next = hlen
				if hlen < len(raw) {
					// Cannot happen: hlen ends at a '\n'.
					next = len(raw)
				}
			}
		} else {
			// Past the first empty line: only reached when it was not
			// the end (never, see above); read the rest as bytes.
			rest := raw[pos:]
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, next = string(rest[:i]), pos+i+1
			} else {
				line = string(rest)
			}
		}
		pos = next
		line = strings.TrimSuffix(line, "\r")
		if len(strings.TrimSpace(line)) == 0 {
			if len(line) == 0 || cur >= 0 || len(fields) > 0 {
				// End of header. A whitespace-only line counts too: some
				// mailers write " \r\n" as the separator.
				return fields, raw[pos:], errorsJoin(bad)
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur >= 0 {
				fields[cur].value += " " + strings.TrimSpace(line)
			}
			continue
		}
		cur = -1
		k, v, ok := strings.Cut(line, ":")
		key := strings.TrimSpace(k)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			if len(fields) == 0 && strings.HasPrefix(line, "From ") {
				continue // mbox separator
			}
			// QUIRK: a continuation line that lost its indentation
			// (corpus lhost-office365-12: "boundary=..." under
			// Content-Type; phpmime issue84: Received). Keep it as part
			// of the previous field, and still report it.
			if n := len(fields); n > 0 && utf8.ValidString(line) {
				fields[n-1].value += " " + strings.TrimSpace(line)
				cur = n - 1
			}
			if len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("header line %q", truncate(line, 60)))
			}
			continue
		}
		fields = append(fields, field{key: canonicalKey(key), value: strings.TrimSpace(v)})
		cur = len(fields) - 1
	}
	return fields, nil, errorsJoin(bad)
}

// canonicalKey is textproto.CanonicalMIMEHeaderKey(k), without its
// allocation for the fields followupd fetches, as servers write them.
func canonicalKey(k string) string {
	if c, ok := knownKeys[k]; ok {
		return c
	}
	return textproto.CanonicalMIMEHeaderKey(k)
}

// extraFields are the canonical HeaderFields without ownFields: those
// kept in Record.Headers (a lookup table; never written after init).
var extraFields = func() map[string]bool {
	m := make(map[string]bool)
	for _, n := range HeaderFields {
		if c := textproto.CanonicalMIMEHeaderKey(n); !ownFields[c] {
			m[c] = true
		}
	}
	return m
}()

// knownKeys maps HeaderFields' spellings and their canonical forms to the
// canonical form (a lookup table; never written after init).
var knownKeys = func() map[string]string {
	m := make(map[string]string, 2*len(HeaderFields))
	for _, n := range HeaderFields {
		c := textproto.CanonicalMIMEHeaderKey(n)
		m[n], m[c] = c, c
	}
	return m
}()

// fixLineEnds turns bare-CR line ends into LF. QUIRK: classic Mac OS
// mailboxes (corpus broken/sisimai__mac__*) end lines with CR alone.
func fixLineEnds(b []byte) []byte {
	if bytes.IndexByte(b, '\n') >= 0 || bytes.IndexByte(b, '\r') < 0 {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
}

func errorsJoin(bad []string) error {
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrMalformed, strings.Join(bad, "; "))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "?")
	}
	return strings.ToValidUTF8(s[:n], "?") + "..."
}

// first returns the value of the first field named key (canonical), and
// whether there was one.
func first(fields []field, key string) (string, bool) {
	for _, f := range fields {
		if f.key == key {
			return f.value, true
		}
	}
	return "", false
}

// all returns the values of every field named key, joined by sep.
func all(fields []field, key, sep string) string {
	var vs []string
	for _, f := range fields {
		if f.key == key {
			vs = append(vs, f.value)
		}
	}
	return strings.Join(vs, sep)
}

// ownFields are the HeaderFields that get a Record field of their own; the
// rest of HeaderFields goes to Record.Headers.
var ownFields = map[string]bool{
	"Message-Id": true, "In-Reply-To": true, "References": true, "From": true,
	"Sender": true, "Reply-To": true, "To": true, "Cc": true, "Bcc": true,
	"Subject": true, "Date": true, "Content-Type": true,
}

// ParseHeader reads a header block (as fetched with BODY.PEEK[HEADER.FIELDS
// (...)]; a trailing empty line is optional) into a Record. It never
// panics. When part of the header is broken it returns what it parsed and
// an error wrapping ErrMalformed.
//
// A message without a usable Message-ID gets SyntheticID(rec) and
// rec.SyntheticID = true. Date stays zero when missing or unparseable; the
// caller fills in INTERNALDATE.
func ParseHeader(raw []byte) (*Record, error) {
	fields, _, err := splitHeader(fixLineEnds(raw))
	rec, err2 := recordFromFields(newWordDecoder(), fields)
	return rec, joinErr(err, err2)
}

func joinErr(errs ...error) error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return errors.Join(out...)
}

func recordFromFields(dec *mime.WordDecoder, fields []field) (*Record, error) {
	rec := &Record{}
	var problems []string

	if v, ok := first(fields, "Message-Id"); ok {
		if ids := ParseMessageIDs(v); len(ids) > 0 {
			rec.MessageID = ids[0]
		}
	}
	rec.InReplyTo = ParseMessageIDs(all(fields, "In-Reply-To", " "))
	rec.References = ParseMessageIDs(all(fields, "References", " "))

	addrs := func(key string) []Address {
		v, ok := first(fields, key)
		if !ok {
			return nil
		}
		list, complete := parseAddressList(dec, v)
		if !complete {
			problems = append(problems, fmt.Sprintf("%s %q", key, truncate(v, 60)))
		}
		return list
	}
	rec.From = addrs("From")
	rec.Sender = addrs("Sender")
	rec.ReplyTo = addrs("Reply-To")
	// To and Cc may legally repeat in resent mail and do in broken mail.
	for _, f := range fields {
		switch f.key {
		case "To", "Cc", "Bcc":
			list, complete := parseAddressList(dec, f.value)
			if !complete {
				problems = append(problems, fmt.Sprintf("%s %q", f.key, truncate(f.value, 60)))
			}
			switch f.key {
			case "To":
				rec.To = append(rec.To, list...)
			case "Cc":
				rec.Cc = append(rec.Cc, list...)
			default:
				rec.Bcc = append(rec.Bcc, list...)
			}
		}
	}

	ctParams := map[string]string{}
	if v, ok := first(fields, "Content-Type"); ok {
		var ct string
		ct, ctParams = parseMediaType(dec, v)
		rec.ContentType = ct
	}
	if v, ok := first(fields, "Subject"); ok {
		rec.Subject = decodeHeaderText(dec, v)
		if cs := ctParams["charset"]; cs != "" && !utf8.ValidString(v) {
			// Raw 8-bit subject: the body's charset is the best hint.
			rec.Subject = decodeHeaderText(dec, decodeCharset(cs, []byte(v)))
		}
		// A folded "Subject:\r\n =?...?=" (go-mail writes long subjects
		// so) unfolds to a leading space that is no part of the subject.
		rec.Subject = strings.TrimSpace(rec.Subject)
	}
	if rec.ContentType == "multipart/report" {
		if rt := strings.ToLower(ctParams["report-type"]); rt != "" {
			rec.ContentType += "; report-type=" + rt
		}
	}
	if v, ok := first(fields, "Date"); ok && strings.TrimSpace(v) != "" {
		d, err := parseDate(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("Date %q", truncate(v, 60)))
		}
		rec.Date = d
	}

	for _, f := range fields {
		if !extraFields[f.key] {
			continue
		}
		if rec.Headers == nil {
			rec.Headers = make(map[string]string)
		} else if _, dup := rec.Headers[f.key]; dup {
			continue // the first one counts
		}
		rec.Headers[f.key] = decodeHeaderText(dec, f.value)
	}

	if rec.MessageID == "" {
		rec.MessageID = SyntheticID(rec)
		rec.SyntheticID = true
	}
	if len(problems) > 0 {
		return rec, fmt.Errorf("%w: %s", ErrMalformed, strings.Join(problems, "; "))
	}
	return rec, nil
}

// ParseAddressList parses an address header value leniently: RFC 2047 names
// in any charset, ';' as a separator (Outlook), bare addresses, and a
// broken list yields the entries that parsed. Addr is lower-cased. Entries
// without an '@' (groups, "undisclosed-recipients:;") are dropped.
func ParseAddressList(s string) []Address {
	list, _ := parseAddressList(newWordDecoder(), s)
	return list
}

// parseAddressList reports complete=false when some entry could not be read.
func parseAddressList(dec *mime.WordDecoder, s string) (list []Address, complete bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, true
	}
	if list, ok := fastAddressList(dec, s); ok {
		return list, true
	}
	return slowAddressList(dec, s)
}

// slowAddressList is parseAddressList by net/mail, with the fallbacks.
func slowAddressList(dec *mime.WordDecoder, s string) (list []Address, complete bool) {
	p := mail.AddressParser{WordDecoder: dec}
	if utf8.ValidString(s) {
		if got, err := p.ParseList(s); err == nil {
			for _, a := range got {
				if ad, ok := makeAddress(dec, a.Name, a.Address); ok {
					list = append(list, ad)
				}
			}
			return list, true
		}
	}
	complete = true
	if (strings.Count(s, `"`)-strings.Count(s, `\"`))%2 == 1 {
		// QUIRK: an unbalanced quote would swallow the rest of the list.
		s = strings.ReplaceAll(s, `"`, "")
	}
	for _, part := range splitAddressList(s) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if utf8.ValidString(part) {
			if a, err := p.Parse(part); err == nil {
				if ad, ok := makeAddress(dec, a.Name, a.Address); ok {
					list = append(list, ad)
				}
				continue
			}
		}
		if ad, ok := salvageAddress(dec, part); ok {
			list = append(list, ad)
			continue
		}
		if strings.HasSuffix(part, ":;") || strings.HasSuffix(part, ":") || !strings.Contains(part, "@") {
			continue // empty group or a display name fragment
		}
		complete = false
	}
	return list, complete
}

func makeAddress(dec *mime.WordDecoder, name, addr string) (Address, bool) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr[at+1:], "@ \t<>,;") {
		return Address{}, false
	}
	name = strings.TrimSpace(decodeHeaderText(dec, name))
	if strings.EqualFold(name, addr) {
		name = ""
	}
	return Address{Name: name, Addr: strings.ToValidUTF8(addr, "")}, true
}

// splitAddressList splits at ',' and ';' outside quotes, angle brackets,
// parentheses and group syntax is ignored (a group's members are split out).
func splitAddressList(s string) []string {
	var out []string
	depthAngle, depthParen := 0, 0
	inQuote := false
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '<':
			depthAngle++
		case c == '>':
			if depthAngle > 0 {
				depthAngle--
			}
		case c == '(':
			depthParen++
		case c == ')':
			if depthParen > 0 {
				depthParen--
			}
		case (c == ',' || c == ';') && depthAngle == 0 && depthParen == 0:
			out = append(out, s[start:i])
			start = i + 1
		case c == ':' && depthAngle == 0 && depthParen == 0:
			// "Group: a@b, c@d;" — drop the group name.
			if !strings.Contains(s[start:i], "@") {
				start = i + 1
			}
		}
	}
	if start <= len(s) {
		out = append(out, s[start:])
	}
	return out
}

// salvageAddress reads `Name <addr>` or a bare addr@domain out of an entry
// net/mail rejected (8-bit name, unbalanced quote, dots in the name, ...).
func salvageAddress(dec *mime.WordDecoder, part string) (Address, bool) {
	if i := strings.LastIndexByte(part, '<'); i >= 0 {
		j := strings.IndexByte(part[i:], '>')
		addr := part[i+1:]
		if j >= 0 {
			addr = part[i+1 : i+j]
		}
		addr = strings.Trim(strings.TrimSpace(addr), `"'`)
		addr = strings.TrimPrefix(strings.ToLower(addr), "mailto:")
		if strings.Contains(addr, "@") && !strings.ContainsAny(addr, " \t,<") {
			name := strings.TrimSpace(part[:i])
			name = strings.Trim(name, `"'`)
			name = strings.ReplaceAll(name, `\"`, `"`)
			return makeAddress(dec, name, addr)
		}
	}
	for _, tok := range strings.FieldsFunc(part, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '<' || r == '>' || r == '"' || r == '(' || r == ')' || r == '\'' || r == '[' || r == ']'
	}) {
		tok = strings.TrimPrefix(strings.ToLower(tok), "mailto:")
		if at := strings.IndexByte(tok, '@'); at > 0 && at < len(tok)-1 {
			return makeAddress(dec, "", tok)
		}
	}
	return Address{}, false
}

// ParseMessageIDs returns the Message-IDs in a Message-ID, In-Reply-To or
// References value, without <>, in order, without duplicates.
//
// QUIRK: MUAs wrap References in the middle of an id ("<abc\r\n def@x>";
// whitespace inside <> is dropped), separate ids with commas, omit the
// angle brackets, or put free text around them ("Your message of ... <id>",
// RFC 822 In-Reply-To). Bare tokens count only when they contain '@'.
func ParseMessageIDs(s string) []string {
	var out []string
	seen := make(map[string]bool)
	add := func(id string) {
		id = strings.Trim(id, `"' `)
		id = strings.ToValidUTF8(id, "")
		if id == "" || seen[id] {
			return
		}
		seen[id] = true
		out = append(out, id)
	}
	for len(s) > 0 {
		lt := strings.IndexByte(s, '<')
		outside := s
		if lt >= 0 {
			outside = s[:lt]
		}
		for _, tok := range strings.FieldsFunc(outside, func(r rune) bool {
			return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == ',' || r == ';' || r == '(' || r == ')'
		}) {
			if at := strings.IndexByte(tok, '@'); at > 0 && at < len(tok)-1 && !strings.ContainsAny(tok, ":>") {
				add(tok)
			}
		}
		if lt < 0 {
			break
		}
		s = s[lt+1:]
		gt := strings.IndexByte(s, '>')
		inner := s
		if gt >= 0 {
			inner = s[:gt]
			s = s[gt+1:]
		} else {
			s = ""
		}
		// A '<' inside means the previous '<' was stray: restart there.
		if j := strings.LastIndexByte(inner, '<'); j >= 0 {
			inner = inner[j+1:]
		}
		add(strings.Join(strings.Fields(inner), ""))
	}
	return out
}

// dateLayouts are tried in order after net/mail.ParseDate fails.
var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"Mon, 2 Jan 06 15:04:05 MST",
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 MST",
	"2 Jan 06 15:04:05 -0700",
	"2 Jan 2006 15:04:05",
	"Mon, 2 Jan 2006 15:04:05",
	"Mon, January 2, 2006 15:04:05 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05",
	time.RFC3339,
	"02.01.2006 15:04:05",
	"02-01-2006 15:04",
	"02-01-2006 15:04:05",
	"2 Jan 06 03:04:05 PM",
	"2 Jan 2006 03:04:05 PM",
	"Mon, 2 Jan 2006 03:04:05 PM -0700",
}

var (
	reParenComment = regexp.MustCompile(`\([^()]*\)`)
	reDateJunk     = regexp.MustCompile(`[^A-Za-z0-9:+\-., ]`)
	reZeroDay      = regexp.MustCompile(`\b0+(\d{1,2}) ([A-Za-z]{3})`) // "029 Apr" (sisimai lhost-googlegroups-14)
)

// parseDate reads a Date header leniently (missing weekday, two-digit year,
// zone names, comments, dotted or ISO forms). A failure returns the zero
// time and an error.
func parseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	// Most mail writes exactly RFC 1123 with a numeric zone; net/mail
	// tries its layouts in an order that fails a few times (an error
	// allocated each) before this one: 7 % of a first sync's CPU.
	if t, err := time.Parse(time.RFC1123Z, s); err == nil {
		return t, nil
	}
	if t, err := mail.ParseDate(s); err == nil {
		return t, nil
	}
	c := reParenComment.ReplaceAllString(s, " ")
	c = strings.ReplaceAll(c, ",", ", ")
	c = reZeroDay.ReplaceAllString(c, "$1 $2")
	c = reDateJunk.ReplaceAllString(c, " ")
	c = strings.Join(strings.Fields(c), " ")
	c = strings.TrimSuffix(c, " UT")
	if t, err := mail.ParseDate(c); err == nil {
		return t, nil
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, c); err == nil {
			return t, nil
		}
	}
	// Drop a trailing zone name the layouts did not take ("+0300 MSK").
	if i := strings.LastIndexByte(c, ' '); i > 0 {
		if t, err := mail.ParseDate(c[:i]); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: date %q", ErrMalformed, truncate(s, 60))
}

// SyntheticDomain is the domain of every SyntheticID.
const SyntheticDomain = "followupd.invalid"

// SyntheticID derives a stable Message-ID for a message that has none:
// "synthetic.<hex>@followupd.invalid", a hash of header fields only.
//
// Identity must survive every way the same message is seen again (DESIGN
// invariant 6): parsed twice, after a UIDVALIDITY change, in two folders
// (a Gmail label, a copy in the Stop folder), by its header fields alone
// (sync) and later whole (explain, a bounce whose body is fetched). So
// nothing of the location (account, mailbox, UIDVALIDITY, UID), the flags,
// INTERNALDATE or the body counts, nor fields that differ between the Sent
// copy and a delivered copy (Bcc, Return-Path, List-*). The first KB of the
// body is mixed in only when Date, From, To and Subject are all empty:
// then the body is all there is.
//
// Date, From, To and Subject alone do not tell apart two bounces from one
// MAILER-DAEMON in the same second with the same subject, so the fields the
// origin sets per message are mixed in too: Cc, In-Reply-To and References
// (the message a DSN cites) and X-Failed-Recipients (the failed address,
// as Exim, Gmail and Mail.ru write it). Each is added only when present, so
// a message without any of them keeps the id earlier versions gave it, and
// a store written by them still knows it after a refetch. Thread-Index is
// left out: Exchange adds one on delivery to mail that lacks it, so the
// Sent copy and the delivered copy would differ.
func SyntheticID(r *Record) string { return syntheticID(r, true) }

// LegacySyntheticID is the id SyntheticID gave before it read Cc,
// In-Reply-To, References and X-Failed-Recipients (2026-11-25): a store
// written before keeps messages under it, and a new sighting of one of them
// must be known by it (the daemon looks both up). The same as SyntheticID
// for a message without those fields.
func LegacySyntheticID(r *Record) string { return syntheticID(r, false) }

func syntheticID(r *Record, extended bool) string {
	h := sha256.New()
	var date string
	if !r.Date.IsZero() {
		date = r.Date.UTC().Format(time.RFC3339)
	}
	addrs := func(l []Address) string {
		s := make([]string, len(l))
		for i, a := range l {
			s[i] = a.Addr
		}
		return strings.Join(s, ",")
	}
	from, to := addrs(r.From), addrs(r.To)
	fmt.Fprintf(h, "date=%s\x00from=%s\x00to=%s\x00subject=%s\x00", date, from, to, r.Subject)
	if date == "" && from == "" && to == "" && r.Subject == "" && r.Body != "" {
		b := r.Body
		if len(b) > 1024 {
			b = b[:1024]
		}
		fmt.Fprintf(h, "body=%s", b)
	}
	// Length-prefixed, so no value can run into the next field.
	more := func(key, v string) {
		if v != "" && extended {
			fmt.Fprintf(h, "%s=%d:%s\x00", key, len(v), v)
		}
	}
	more("cc", addrs(r.Cc))
	more("in-reply-to", strings.Join(r.InReplyTo, " "))
	more("references", strings.Join(r.References, " "))
	if v := r.Headers["X-Failed-Recipients"]; v != "" {
		// One address per entry, lower-cased: the spelling is no
		// difference, the addresses are.
		var failed []string
		for _, a := range strings.FieldsFunc(strings.ToLower(v), func(c rune) bool { return c == ',' || c == ';' || c == ' ' || c == '\t' }) {
			failed = append(failed, strings.Trim(a, "<>"))
		}
		more("x-failed-recipients", strings.Join(failed, ","))
	}
	return "synthetic." + hex.EncodeToString(h.Sum(nil)[:16]) + "@" + SyntheticDomain
}

// subjectPrefix matches one reply/forward marker at the start of a
// lower-cased subject: English, German (AW, WG), Russian (Отв, Ответ,
// Пересл, Fw), Nordic (SV, VS), French (TR), Italian (RIF), Chinese
// (回复, 答复, 转发), with counters "re[2]:" / "re(2):" / "re^2:", full-width
// colons too.
var subjectPrefix = regexp.MustCompile(`^(?:re|fwd?|fw|aw|wg|sv|vs|tr|rif|отв|ответ|пересл|переслать|回复|答复|转发)\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]`)

var subjectTag = regexp.MustCompile(`^\[[^\[\]]*\]`)

// NormalizeSubject reduces a subject to what a reply and its original
// share: reply/forward prefixes and leading [tags] are stripped repeatedly,
// the result is lower-cased with whitespace collapsed. It is idempotent.
func NormalizeSubject(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ToLower(s)
	s = strings.Join(strings.Fields(s), " ")
	for {
		prev := s
		if loc := subjectPrefix.FindStringIndex(s); loc != nil {
			s = s[loc[1]:]
		} else if loc := subjectTag.FindStringIndex(s); loc != nil {
			s = s[loc[1]:]
		}
		s = strings.TrimSpace(s)
		if s == prev {
			break
		}
	}
	return s
}

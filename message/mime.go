package message

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"strings"
)

// DefaultMaxBody is the body cap Parse uses when given maxBody <= 0.
const DefaultMaxBody = 256 << 10

const (
	maxMessageBytes = 64 << 20 // Parse reads at most this much of a message
	maxDepth        = 16       // MIME nesting followed
	maxParts        = 500      // MIME parts visited
)

// Parse reads a whole message (an .eml, or BODY.PEEK[] from IMAP): all
// ParseHeader fills, plus Attachments, Body (text/plain preferred, else
// HTML reduced to text; transfer- and charset-decoded to UTF-8; at most
// maxBody bytes, DefaultMaxBody when maxBody <= 0), HasBody, and Report.
//
// Report is filled from a multipart/report (RFC 6522): the per-recipient
// blocks of its message/delivery-status part (RFC 3464 §2.3) and the
// Message-ID and To of the returned message/rfc822 or text/rfc822-headers
// part. For a message from a null or daemon sender (Return-Path <>,
// MAILER-DAEMON, postmaster) that is not a report — the non-standard
// bounces — Report gets the returned message's Message-ID and To from an
// attached message or from headers quoted in the text. Report says what
// was found; it does not decide that the message is a bounce.
//
// Parse never panics and tolerates broken MIME (missing or wrong
// boundaries, bad base64, unknown charsets): it returns what it read plus
// an error wrapping ErrMalformed.
func Parse(r io.Reader, maxBody int) (*Record, error) {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	data, readErr := io.ReadAll(io.LimitReader(r, maxMessageBytes))
	if readErr != nil {
		readErr = fmt.Errorf("message: reading: %w", readErr)
	}
	data = fixLineEnds(data)
	fields, body, herr := splitHeader(data)
	dec := newWordDecoder()
	rec, ferr := recordFromFields(dec, fields)

	w := &walker{dec: dec, rec: rec}
	w.walk(fields, body, 0, "")
	w.finish(maxBody)

	if rec.SyntheticID {
		rec.MessageID = SyntheticID(rec)
	}
	var werr error
	if len(w.errs) > 0 {
		werr = fmt.Errorf("%w: %s", ErrMalformed, strings.Join(w.errs, "; "))
	}
	return rec, joinErr(readErr, herr, ferr, werr)
}

// walker visits the MIME tree of one message.
type walker struct {
	dec   *mime.WordDecoder
	rec   *Record
	plain []string // inline text/plain parts, in order
	html  []string // inline text/html parts, in order
	parts int
	errs  []string

	origHeaders []field // returned message's header (first found)
	inReport    bool
}

func (w *walker) fail(format string, args ...any) {
	if len(w.errs) < 8 {
		w.errs = append(w.errs, fmt.Sprintf(format, args...))
	}
}

// walk visits one entity. parent is the parent multipart's subtype
// ("digest" changes the default type; "report" marks returned content).
func (w *walker) walk(fields []field, body []byte, depth int, parent string) {
	w.parts++
	if depth > maxDepth || w.parts > maxParts {
		w.fail("MIME nesting deeper than %d or more than %d parts", maxDepth, maxParts)
		return
	}
	ctRaw, _ := first(fields, "Content-Type")
	ct, params := parseMediaType(w.dec, ctRaw)
	if !strings.Contains(ct, "/") {
		if ctRaw != "" && depth > 0 {
			w.fail("content type %q", truncate(ctRaw, 40))
		}
		ct = "text/plain"
		if parent == "digest" {
			ct = "message/rfc822"
		}
	}
	cte, _ := first(fields, "Content-Transfer-Encoding")
	dispRaw, _ := first(fields, "Content-Disposition")
	disp, dparams := parseMediaType(w.dec, dispRaw)
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	filename = strings.TrimSpace(filename)

	switch {
	case strings.HasPrefix(ct, "multipart/"):
		sub := strings.TrimPrefix(ct, "multipart/")
		if sub == "report" {
			w.inReport = true
		}
		parts, err := splitMultipart(body, params["boundary"])
		if err != nil {
			w.fail("%s: %v", ct, err)
		}
		if parts == nil {
			// No boundary found at all: read the body as text, and a
			// report's text for delivery-status fields.
			w.text("text/plain", params["charset"], cte, body)
			if sub == "report" {
				if rs := parseDSN(body); len(rs) > 0 {
					w.report().Recipients = append(w.report().Recipients, rs...)
				}
			}
			return
		}
		for _, p := range parts {
			pf, pb, perr := splitHeader(p)
			if perr != nil {
				w.fail("part header: %v", perr)
			}
			w.walk(pf, pb, depth+1, sub)
		}

	case ct == "message/delivery-status" || ct == "message/global-delivery-status":
		b, err := transferDecode(cte, body)
		if err != nil {
			w.fail("%s: %v", ct, err)
		}
		w.report().Recipients = append(w.report().Recipients, parseDSN(b)...)

	case ct == "message/rfc822" || ct == "message/global" ||
		ct == "text/rfc822-headers" || ct == "message/rfc822-headers":
		b, err := transferDecode(cte, body)
		if err != nil {
			w.fail("%s: %v", ct, err)
		}
		hf, _, _ := splitHeader(b)
		if w.origHeaders == nil && len(hf) > 0 {
			w.origHeaders = hf
		}
		if strings.HasPrefix(ct, "message/rfc822") || ct == "message/global" {
			if disp == "attachment" || filename != "" || parent != "report" {
				w.rec.Attachments = append(w.rec.Attachments, Attachment{Filename: filename, ContentType: ct})
			}
		}

	case strings.HasPrefix(ct, "text/") && disp != "attachment" && (filename == "" || disp == "inline") &&
		(ct == "text/plain" || ct == "text/html"):
		w.text(ct, params["charset"], cte, body)

	default:
		w.rec.Attachments = append(w.rec.Attachments, Attachment{Filename: filename, ContentType: ct})
	}
}

// text decodes an inline text part and keeps it as a body candidate.
func (w *walker) text(ct, cs, cte string, body []byte) {
	b, err := transferDecode(cte, body)
	if err != nil {
		w.fail("%s body: %v", ct, err)
	}
	if ct == "text/html" {
		if cs == "" {
			cs = htmlMetaCharset(b)
		}
		w.html = append(w.html, decodeCharset(cs, b))
		return
	}
	w.plain = append(w.plain, decodeCharset(cs, b))
}

func (w *walker) report() *Report {
	if w.rec.Report == nil {
		w.rec.Report = &Report{}
	}
	return w.rec.Report
}

// finish picks the body and fills Report's returned-message fields.
func (w *walker) finish(maxBody int) {
	var body string
	if len(w.plain) > 0 {
		body = strings.Join(w.plain, "\n")
	} else if len(w.html) > 0 {
		body = htmlToText(strings.Join(w.html, "\n"))
	}
	body = strings.ReplaceAll(body, "\r\n", "\n")
	w.rec.Body = capUTF8(body, maxBody)
	w.rec.HasBody = true

	daemon := nullOrDaemonSender(w.rec)
	if !w.inReport && !daemon {
		return
	}
	hf := w.origHeaders
	if hf == nil && daemon {
		hf = quotedHeaders(body)
	}
	if hf == nil {
		return
	}
	rep := w.report()
	if v, ok := first(hf, "Message-Id"); ok {
		if ids := ParseMessageIDs(v); len(ids) > 0 {
			rep.OriginalMessageID = ids[0]
		}
	}
	for _, f := range hf {
		if f.key == "To" {
			list, _ := parseAddressList(w.dec, f.value)
			for _, a := range list {
				rep.OriginalTo = append(rep.OriginalTo, a.Addr)
			}
		}
	}
}

// nullOrDaemonSender reports a sender that, by RFC 3464 §2 and RFC 5321
// §4.5.5, is the return path of notifications: null Return-Path, or a
// From of MAILER-DAEMON / postmaster. Only used to decide where to look for
// the returned message's headers.
func nullOrDaemonSender(r *Record) bool {
	if strings.TrimSpace(r.Headers["Return-Path"]) == "<>" {
		return true
	}
	for _, a := range r.From {
		local, _, _ := strings.Cut(a.Addr, "@")
		switch local {
		case "mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon":
			return true
		}
	}
	return false
}

// quotedHeaders finds a returned message's header block quoted inside the
// text of a non-standard bounce (qmail "--- Below this line is a copy of
// the message.", Exim "------ This is a copy of the message, including all
// the headers. ------"): the first line starting "Message-ID:" and the
// header lines around it.
func quotedHeaders(body string) []field {
	lower := strings.ToLower(body)
	i := strings.Index(lower, "\nmessage-id:")
	if i < 0 {
		return nil
	}
	// Back up to the start of the block: the previous empty line.
	start := strings.LastIndex(body[:i], "\n\n")
	if start < 0 {
		start = 0
	}
	block := strings.TrimLeft(body[start:], "\n")
	var out []field
	hf, _, _ := splitHeader([]byte(block))
	for _, f := range hf {
		if f.key == "Message-Id" || f.key == "To" {
			out = append(out, f)
		}
	}
	return out
}

// splitMultipart splits a multipart body at its boundary lines, ignoring
// preamble and epilogue. It returns nil when no boundary line is found.
//
// QUIRK: written by hand rather than with textproto.MultipartReader,
// which stops at the first part whose header has a malformed line and
// rejects a missing final boundary; here each part is cut out first and
// parsed on its own, a missing close delimiter ends the last part at EOF,
// and a missing boundary parameter is guessed from the first "--" line
// (testdata/broken-mime.eml, corpus broken/flanker__missing-boundaries).
func splitMultipart(body []byte, boundary string) ([][]byte, error) {
	if boundary == "" {
		boundary = guessBoundary(body)
		if boundary == "" {
			return nil, fmt.Errorf("no boundary")
		}
	}
	parts, err := splitAt(body, boundary)
	if parts == nil {
		// QUIRK: the declared boundary differs from the one used
		// (hand-edited or re-wrapped mail, corpus rhost-google-02).
		if g := guessBoundary(body); g != "" && g != boundary {
			if p2, err2 := splitAt(body, g); p2 != nil {
				return p2, joinErr(fmt.Errorf("boundary %q not found, used %q", truncate(boundary, 40), truncate(g, 40)), err2)
			}
		}
	}
	return parts, err
}

func splitAt(body []byte, boundary string) ([][]byte, error) {
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1 // start of the current part's content
	pos := 0
	closed := false
	for pos < len(body) {
		end := bytes.IndexByte(body[pos:], '\n')
		next := len(body)
		lineEnd := len(body)
		if end >= 0 {
			lineEnd = pos + end
			next = lineEnd + 1
		}
		line := bytes.TrimRight(body[pos:lineEnd], " \t\r")
		if bytes.HasPrefix(line, delim) {
			rest := line[len(delim):]
			isClose := bytes.Equal(rest, []byte("--"))
			if len(rest) == 0 || isClose {
				if start >= 0 {
					// The CRLF before the boundary belongs to the boundary.
					content := body[start:pos]
					content = bytes.TrimSuffix(content, []byte("\n"))
					content = bytes.TrimSuffix(content, []byte("\r"))
					parts = append(parts, content)
				}
				if isClose {
					closed = true
					break
				}
				start = next
			}
		}
		pos = next
	}
	if !closed && start >= 0 && start <= len(body) {
		parts = append(parts, body[start:])
	}
	if start < 0 && parts == nil {
		return nil, fmt.Errorf("boundary %q not found", truncate(boundary, 40))
	}
	if !closed {
		return parts, fmt.Errorf("missing final boundary %q", truncate(boundary, 40))
	}
	return parts, nil
}

func guessBoundary(body []byte) string {
	for _, line := range bytes.SplitN(body, []byte("\n"), 200) {
		line = bytes.TrimRight(line, " \t\r")
		if len(line) > 4 && bytes.HasPrefix(line, []byte("--")) && !bytes.ContainsAny(line, " \t") {
			return string(line[2:])
		}
	}
	return ""
}

// transferDecode undoes Content-Transfer-Encoding. Broken base64 or
// quoted-printable yields what decoded plus an error; unknown encodings
// are passed through.
func transferDecode(cte string, b []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		clean := make([]byte, 0, len(b))
		for _, c := range b {
			if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
				clean = append(clean, c)
			}
		}
		// Padding is recomputed: some mailers drop it, some add junk.
		if len(clean)%4 == 1 { // a stray character: not decodable
			clean = clean[:len(clean)-1]
		}
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, err := base64.RawStdEncoding.Decode(out, clean)
		if err != nil {
			return out[:n], fmt.Errorf("base64: %w", err)
		}
		return out[:n], nil
	case "quoted-printable":
		return decodeQP(b), nil
	}
	return b, nil
}

// decodeQP decodes quoted-printable (RFC 2045 §6.7) without ever failing.
// QUIRK: mime/quotedprintable stops at the first bad escape; real mail has
// "=\r\r\n" soft breaks, lower-case hex, trailing spaces after '=' and
// raw 8-bit bytes (corpus lhost-office365-13). A '=' that starts no valid
// escape is kept as written.
func decodeQP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		if i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]) {
			out = append(out, unhex(b[i+1])<<4|unhex(b[i+2]))
			i += 2
			continue
		}
		// Soft line break: '=' then optional spaces/CRs, then LF or EOF.
		j := i + 1
		for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\r') {
			j++
		}
		if j == len(b) {
			i = j - 1
			continue
		}
		if b[j] == '\n' {
			i = j
			continue
		}
		out = append(out, c)
	}
	return out
}

// capUTF8 cuts s to at most n bytes without splitting a rune.
func capUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// s is valid UTF-8, so the only invalid bytes are a rune cut in two.
	return strings.ToValidUTF8(s[:n], "")
}

package imapwatch

import (
	"bytes"
	"io"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"

	"followupd/message"
)

// headerSection is what every sync fetch asks for: the header fields
// classification needs, without setting \Seen.
func headerSection() *imap.FetchItemBodySection {
	return &imap.FetchItemBodySection{
		Specifier:    imap.PartSpecifierHeader,
		HeaderFields: message.HeaderFields,
		Peek:         true,
	}
}

// findSection returns the bytes of section in buf.
//
// QUIRK: some servers echo a HEADER.FIELDS list that differs from the one
// asked for (order, or fields they dropped), so imapclient's exact match
// fails; a single section in the response is then taken as the one asked for.
func findSection(buf *imapclient.FetchMessageBuffer, section *imap.FetchItemBodySection) ([]byte, bool) {
	if b := buf.FindBodySection(section); b != nil {
		return b, true
	}
	if len(buf.BodySection) == 1 {
		return buf.BodySection[0].Bytes, true
	}
	return nil, false
}

// toRecord turns one fetched message into a Record: header fields through
// message.ParseHeader, attachments from BODYSTRUCTURE, flags, dates. The
// parse error (a partly broken header) is returned with the usable record.
//
// With shallow set, a header with a Message-ID gives a shallow record
// (message.ParseShallow): the caller decides, once it knows where the
// message is, whether to Deepen it.
func toRecord(m *imapclient.FetchMessageBuffer, hdr []byte, shallow bool) (*message.Record, error) {
	var rec *message.Record
	var err error
	ok := false
	if shallow {
		rec, ok = message.ParseShallow(hdr)
	}
	if !ok {
		rec, err = message.ParseHeader(hdr)
	}
	if rec == nil {
		rec = &message.Record{}
	}
	rec.UID = uint32(m.UID)
	rec.Internal = m.InternalDate
	rec.Flags = flagStrings(m.Flags)
	if rec.Date.IsZero() {
		rec.Date = m.InternalDate
	}
	if rec.MessageID == "" {
		rec.MessageID = message.SyntheticID(rec)
		rec.SyntheticID = true
	}
	if m.BodyStructure != nil {
		rec.Attachments = attachments(m.BodyStructure)
		if rec.ContentType == "" {
			rec.ContentType = contentType(m.BodyStructure)
		}
	}
	return rec, err
}

func flagStrings(flags []imap.Flag) []string {
	if len(flags) == 0 {
		return nil
	}
	out := make([]string, len(flags))
	for i, f := range flags {
		out[i] = string(f)
	}
	return out
}

// contentType is the top-level type as message.Record wants it, for a
// message whose header lacked Content-Type fields we could read.
func contentType(bs imap.BodyStructure) string {
	ct := bs.MediaType()
	if mp, ok := bs.(*imap.BodyStructureMultiPart); ok && ct == "multipart/report" && mp.Extended != nil {
		if rt := mp.Extended.Params["report-type"]; rt != "" {
			ct += "; report-type=" + strings.ToLower(rt)
		}
	}
	return ct
}

// attachments lists the parts that carry a file name or are marked
// "Content-Disposition: attachment". A message/rfc822 part is listed as one
// part; what it contains belongs to the enclosed message.
func attachments(bs imap.BodyStructure) []message.Attachment {
	var out []message.Attachment
	bs.Walk(func(_ []int, part imap.BodyStructure) bool {
		sp, ok := part.(*imap.BodyStructureSinglePart)
		if !ok {
			return true
		}
		var dispParams map[string]string
		isAttachment := false
		if d := sp.Disposition(); d != nil {
			dispParams = d.Params
			isAttachment = strings.EqualFold(d.Value, "attachment")
		}
		name := paramValue(dispParams, "filename")
		if name == "" {
			name = paramValue(sp.Params, "name")
		}
		if name != "" || isAttachment {
			out = append(out, message.Attachment{Filename: name, ContentType: sp.MediaType()})
		}
		return true
	})
	return out
}

// paramValue reads a MIME parameter from BODYSTRUCTURE parameters, which
// servers hand over undecoded: plain (RFC 2047 words already decoded by
// imapclient's WordDecoder, applied again here for nested leftovers),
// RFC 2231 extended ("name*" = charset'lang'%XX) or continued ("name*0*",
// "name*1", ...). Keys are lower-case (imapclient lower-cases them).
func paramValue(params map[string]string, key string) string {
	if len(params) == 0 {
		return ""
	}
	if v, ok := params[key+"*"]; ok {
		return decode2231(v)
	}
	type piece struct {
		n       int
		v       string
		encoded bool
	}
	var pieces []piece
	prefix := key + "*"
	for k, v := range params {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || rest == "" {
			continue
		}
		enc := strings.HasSuffix(rest, "*")
		n, err := strconv.Atoi(strings.TrimSuffix(rest, "*"))
		if err != nil || n < 0 || n > 999 {
			continue
		}
		pieces = append(pieces, piece{n, v, enc})
	}
	if len(pieces) > 0 {
		slices.SortFunc(pieces, func(a, b piece) int { return a.n - b.n })
		// The charset is named once, in piece 0; later encoded pieces are
		// plain %XX text in the same charset.
		cs := ""
		var raw bytes.Buffer
		for i, p := range pieces {
			v := p.v
			if p.encoded {
				if i == 0 {
					if parts := strings.SplitN(v, "'", 3); len(parts) == 3 {
						cs, v = parts[0], parts[2]
					}
				}
				if u, err := url.PathUnescape(v); err == nil {
					v = u
				}
			}
			raw.WriteString(v)
		}
		return toUTF8(cs, raw.Bytes())
	}
	if v, ok := params[key]; ok {
		return decodeWords(v)
	}
	return ""
}

// decode2231 decodes charset'language'%XX-encoded text.
func decode2231(v string) string {
	parts := strings.SplitN(v, "'", 3)
	if len(parts) != 3 {
		return v
	}
	s, err := url.PathUnescape(parts[2])
	if err != nil {
		s = parts[2]
	}
	return toUTF8(parts[0], []byte(s))
}

func toUTF8(cs string, b []byte) string {
	if cs == "" || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "us-ascii") {
		return string(b)
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return string(b)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return string(b)
	}
	return string(out)
}

// decodeWords decodes RFC 2047 encoded-words in any charset; on failure the
// text is returned as it came.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d := &mime.WordDecoder{CharsetReader: charset.Reader}
	out, err := d.DecodeHeader(s)
	if err != nil {
		return s
	}
	return out
}

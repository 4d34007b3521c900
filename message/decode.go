package message

import (
	"bytes"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// newWordDecoder returns an RFC 2047 decoder that understands every charset
// go-message/charset knows (windows-1251, koi8-r, iso-8859-5, gb2312, ...).
// It calls charset.Reader explicitly: we do not rely on the package-level
// message.CharsetReader that importing go-message/charset also sets.
func newWordDecoder() *mime.WordDecoder {
	return &mime.WordDecoder{CharsetReader: charsetReader}
}

func charsetReader(cs string, in io.Reader) (io.Reader, error) {
	return charset.Reader(cs, in)
}

// decodeCharset converts b from the named charset to UTF-8. An unknown or
// empty charset, or a conversion error, falls back to the bytes themselves
// when they are valid UTF-8, else to a Cyrillic guess (see guessCharset).
func decodeCharset(cs string, b []byte) string {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), `"'`))
	switch cs {
	case "", "us-ascii", "ascii", "utf-8", "utf8", "unknown-8bit", "x-unknown", "default":
		if utf8.Valid(b) {
			return string(b)
		}
		return guessCharset(b)
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err == nil {
		out, err := io.ReadAll(r)
		if err == nil && utf8.Valid(out) {
			return string(out)
		}
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return guessCharset(b)
}

// guessCharset decodes 8-bit text that declares no (or a wrong) charset.
// QUIRK: Russian mailers (old Outlook Express, 1C, The Bat!) put raw
// windows-1251 or koi8-r bytes in headers and bodies without a charset.
// Running text is mostly lower case, and the two charsets swap the case
// halves of the Cyrillic block (cp1251: lower = 0xE0-0xFF; koi8-r: lower =
// 0xC0-0xDF), so the charset that yields more lower-case letters wins.
// Bytes that are neither become U+FFFD; the result is always valid UTF-8.
func guessCharset(b []byte) string {
	var hiC0, hiE0 int
	for _, c := range b {
		switch {
		case c >= 0xE0:
			hiE0++
		case c >= 0xC0:
			hiC0++
		}
	}
	cs := "windows-1251"
	if hiC0 > hiE0 {
		cs = "koi8-r"
	}
	if hiC0+hiE0 == 0 {
		cs = "iso-8859-1"
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err == nil {
		if out, err := io.ReadAll(r); err == nil {
			return strings.ToValidUTF8(string(out), "\uFFFD")
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// decodeHeaderText decodes RFC 2047 encoded words in any charset and turns
// raw 8-bit text into UTF-8. It never fails: an undecodable word is kept
// as written.
func decodeHeaderText(dec *mime.WordDecoder, s string) string {
	if strings.Contains(s, "=?") {
		if out, err := dec.DecodeHeader(s); err == nil {
			s = out
		} else {
			s = decodeWordsOneByOne(dec, s)
		}
	}
	if !utf8.ValidString(s) {
		s = guessCharset([]byte(s))
	}
	return s
}

// decodeWordsOneByOne is the fallback when DecodeHeader rejects the whole
// value (one word in an unknown charset, a malformed word): every word that
// decodes is replaced, the rest stay as written. Adjacent encoded words are
// joined without the whitespace between them (RFC 2047 §6.2).
func decodeWordsOneByOne(dec *mime.WordDecoder, s string) string {
	var b strings.Builder
	prevWord := false
	for len(s) > 0 {
		i := strings.Index(s, "=?")
		if i < 0 {
			b.WriteString(s)
			break
		}
		// A word is =?charset?enc?text?= : find the end after the two
		// inner question marks.
		end := -1
		if q1 := strings.IndexByte(s[i+2:], '?'); q1 >= 0 {
			p := i + 2 + q1 + 1
			if q2 := strings.IndexByte(s[p:], '?'); q2 >= 0 {
				p += q2 + 1
				if e := strings.Index(s[p:], "?="); e >= 0 {
					end = p + e + 2
				}
			}
		}
		if end < 0 {
			b.WriteString(s)
			break
		}
		between := s[:i]
		word := s[i:end]
		out, err := dec.Decode(word)
		if err != nil {
			b.WriteString(between)
			b.WriteString(word)
			prevWord = false
		} else {
			if !(prevWord && strings.TrimSpace(between) == "") {
				b.WriteString(between)
			}
			b.WriteString(out)
			prevWord = true
		}
		s = s[end:]
	}
	return b.String()
}

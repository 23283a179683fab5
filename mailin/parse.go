package mailin

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"

	"github.com/klaxonhq/klaxon/rules"
)

// What is kept of a mail is bounded apart from its size, so that the
// inbound log holds about what a webhook may put there: the text a person
// reads, the headers that identify a sender, not a log file pasted in.
const (
	maxTextBytes   = 64 << 10
	maxHeaderBytes = 1 << 10
	maxHeaders     = 100
	maxAttachments = 100
)

// maxPartDepth bounds how deeply multiparts may nest: real mail nests
// three or four levels; deeper is an attempt to make us recurse.
const maxPartDepth = 8

// parsed is a mail read into the shape the rules see, with what could not
// be read in it, if anything.
type parsed struct {
	msg     rules.EmailMessage
	problem string
	// plain and html are the first readable text/plain and text/html
	// bodies; the plain one wins.
	plain, html *string
}

// parseMail reads raw, a whole RFC 5322 message, into an EmailMessage.
// envelopeFrom stands in for a missing From header. problem is non-empty
// when the mail could not be read whole (no header, a broken MIME part):
// what was read is still returned, to be stored for the record.
func parseMail(raw []byte, envelopeFrom string) (msg rules.EmailMessage, problem string) {
	p := &parsed{msg: rules.EmailMessage{From: envelopeFrom, To: []string{}, Headers: map[string]string{}, Attachments: []rules.EmailAttachment{}}}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		p.msg.Text = validText(raw)
		return p.msg, "the mail has no readable header: " + err.Error()
	}
	p.readHeader(m.Header)
	p.readPart(textproto.MIMEHeader(m.Header), m.Body, 0)
	switch {
	case p.plain != nil:
		p.msg.Text = strings.TrimSpace(*p.plain)
	case p.html != nil:
		p.msg.Text = htmlToText(*p.html)
	}
	p.msg.Text = truncate(p.msg.Text, maxTextBytes)
	return p.msg, p.problem
}

var headerDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

func (p *parsed) readHeader(h mail.Header) {
	for name, values := range h {
		if len(values) == 0 || len(p.msg.Headers) == maxHeaders {
			continue
		}
		p.msg.Headers[textproto.CanonicalMIMEHeaderKey(name)] = truncate(decodeHeader(values[0]), maxHeaderBytes)
	}
	p.msg.Subject = decodeHeader(h.Get("Subject"))
	p.msg.SubjectKey = rules.SubjectKey(p.msg.Subject)
	if from := h.Get("From"); from != "" {
		if addr, err := h.AddressList("From"); err == nil && len(addr) > 0 {
			p.msg.From = addr[0].Address
		} else {
			p.msg.From = decodeHeader(from)
		}
	}
	if to := h.Get("To"); to != "" {
		if addrs, err := h.AddressList("To"); err == nil {
			for _, a := range addrs {
				p.msg.To = append(p.msg.To, a.Address)
			}
		} else {
			p.msg.To = append(p.msg.To, decodeHeader(to))
		}
	}
}

// decodeHeader decodes RFC 2047 encoded words; a header that does not
// decode is kept as it came, made valid UTF-8.
func decodeHeader(v string) string {
	if decoded, err := headerDecoder.DecodeHeader(v); err == nil {
		return decoded
	}
	return strings.ToValidUTF8(v, "\uFFFD")
}

// readPart reads one MIME part, a multipart by its parts: text bodies are
// kept, attachments noted, and the first problem remembered.
func (p *parsed) readPart(h textproto.MIMEHeader, body io.Reader, depth int) {
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		// RFC 2045: a missing or unreadable type is plain US-ASCII text.
		mediaType, params = "text/plain", map[string]string{}
	}
	disposition, dispParams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	name := dispParams["filename"]
	if name == "" {
		name = params["name"]
	}
	name = decodeHeader(name)

	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= maxPartDepth {
			p.fail(fmt.Sprintf("MIME parts nest deeper than %d levels", maxPartDepth))
			return
		}
		boundary := params["boundary"]
		if boundary == "" {
			p.fail("a " + mediaType + " part has no boundary")
			return
		}
		parts := multipart.NewReader(body, boundary)
		for {
			part, err := parts.NextRawPart()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				p.fail("a " + mediaType + " part is malformed: " + err.Error())
				return
			}
			p.readPart(part.Header, part, depth+1)
		}
	}

	content, err := io.ReadAll(decodeTransfer(h.Get("Content-Transfer-Encoding"), body))
	if err != nil {
		p.fail("a " + mediaType + " part does not decode: " + err.Error())
		return
	}
	isText := mediaType == "text/plain" || mediaType == "text/html"
	if disposition == "attachment" || name != "" || !isText {
		if len(p.msg.Attachments) < maxAttachments {
			p.msg.Attachments = append(p.msg.Attachments, rules.EmailAttachment{Name: truncate(name, maxHeaderBytes), Type: mediaType, Size: len(content)})
		}
		return
	}
	text := toUTF8(content, params["charset"])
	switch {
	case mediaType == "text/plain" && p.plain == nil:
		p.plain = &text
	case mediaType == "text/html" && p.html == nil:
		p.html = &text
	}
}

func (p *parsed) fail(problem string) {
	if p.problem == "" {
		p.problem = problem
	}
}

// decodeTransfer undoes a Content-Transfer-Encoding; 7bit, 8bit, binary
// and unknown ones are read as they are.
func decodeTransfer(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		// The decoder skips the line breaks itself.
		return base64.NewDecoder(base64.StdEncoding, r)
	}
	return r
}

// toUTF8 converts text from charset; an unknown charset, or text that
// does not convert, is kept with its invalid bytes replaced.
func toUTF8(content []byte, charset string) string {
	if charset != "" && !strings.EqualFold(charset, "utf-8") && !strings.EqualFold(charset, "us-ascii") {
		if enc, err := htmlindex.Get(charset); err == nil {
			if converted, err := enc.NewDecoder().Bytes(content); err == nil {
				return string(converted)
			}
		}
	}
	return validText(content)
}

// truncate cuts s to at most n bytes, at a character boundary, marking
// the cut.
func truncate(s string, n int) string {
	const mark = " […]"
	if len(s) <= n {
		return s
	}
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

func validText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("unknown charset %q: %w", charset, err)
	}
	return enc.NewDecoder().Reader(input), nil
}

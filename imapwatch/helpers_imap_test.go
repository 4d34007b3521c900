package imapwatch

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"followupd/config"
)

func TestDiscoverByName(t *testing.T) {
	tests := []struct {
		name      string
		mailboxes []string
		cfg       config.Folders
		want      Folders
	}{
		{"plain", []string{"Sent", "Drafts", "Trash"}, config.Folders{}, Folders{"INBOX", "Sent", "Drafts"}},
		{"outlook", []string{"Sent Items", "Drafts"}, config.Folders{}, Folders{"INBOX", "Sent Items", "Drafts"}},
		{"apple", []string{"Sent Messages", "Drafts"}, config.Folders{}, Folders{"INBOX", "Sent Messages", "Drafts"}},
		{"russian", []string{"Отправленные", "Черновики", "Корзина"}, config.Folders{}, Folders{"INBOX", "Отправленные", "Черновики"}},
		{"gmail", []string{"[Gmail]/Sent Mail", "[Gmail]/Drafts", "[Gmail]/All Mail"}, config.Folders{}, Folders{"INBOX", "[Gmail]/Sent Mail", "[Gmail]/Drafts"}},
		{"nested leaf", []string{"INBOX/Sent", "INBOX/Drafts"}, config.Folders{}, Folders{"INBOX", "INBOX/Sent", "INBOX/Drafts"}},
		{"case", []string{"SENT", "drafts"}, config.Folders{}, Folders{"INBOX", "SENT", "drafts"}},
		{"config wins", []string{"Sent", "Drafts", "Out"}, config.Folders{Sent: "Out", Inbox: "Box"}, Folders{"Box", "Out", "Drafts"}},
		{"none", []string{"Archive"}, config.Folders{}, Folders{"INBOX", "", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, acct := setup(t, tc.mailboxes...)
			acct.Folders = tc.cfg
			c, err := Dial(context.Background(), acct, testPass, DialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := Discover(context.Background(), c, acct)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Discover = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPickFolderPrefersSpecialUse(t *testing.T) {
	list := []*imap.ListData{
		{Mailbox: "Sent", Delim: '/'},
		{Mailbox: "Gesendet", Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrSent}},
		{Mailbox: "Old", Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrDrafts, imap.MailboxAttrNoSelect}},
		{Mailbox: "Drafts", Delim: '/'},
	}
	if got := pickFolder(list, imap.MailboxAttrSent, sentNames); got != "Gesendet" {
		t.Errorf("sent = %q, want the \\Sent one", got)
	}
	if got := pickFolder(list, imap.MailboxAttrDrafts, draftNames); got != "Drafts" {
		t.Errorf("drafts = %q, want Drafts (the \\Drafts one is \\Noselect)", got)
	}
}

func TestSearchRepliesFindMessageIDAppend(t *testing.T) {
	srv, acct := setup(t, "Sent")
	ctx := context.Background()
	appendN(t, srv, "INBOX", 1, 1) // unrelated
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(srv.Append(testUser, "INBOX", rawMsg(2, "Re: Offer", "In-Reply-To: <offer-1@example.com>")))
	must(srv.Append(testUser, "INBOX", rawMsg(3, "Re: Re: Offer", "References: <x@y> <offer-2@example.com>")))
	must(srv.Append(testUser, "INBOX", rawMsg(4, "Other", "In-Reply-To: <other@example.com>")))

	c, err := Dial(ctx, acct, testPass, DialOptions{})
	must(err)
	defer c.Close()

	uids, err := SearchReplies(ctx, c, "INBOX", []string{"<offer-1@example.com>", "offer-2@example.com", "", "offer-1@example.com"})
	must(err)
	if want := []uint32{2, 3}; !slices.Equal(uids, want) {
		t.Errorf("SearchReplies = %v, want %v", uids, want)
	}
	uids, err = SearchReplies(ctx, c, "INBOX", []string{"nobody@example.com"})
	must(err)
	if len(uids) != 0 {
		t.Errorf("SearchReplies(nobody) = %v, want none", uids)
	}
	// Many ids are split over several searches.
	var many []string
	for i := range 40 {
		many = append(many, "id"+strings.Repeat("x", i)+"@example.com")
	}
	many = append(many, "offer-2@example.com")
	uids, err = SearchReplies(ctx, c, "INBOX", many)
	must(err)
	if want := []uint32{3}; !slices.Equal(uids, want) {
		t.Errorf("SearchReplies(41 ids) = %v, want %v", uids, want)
	}
	if _, err := SearchReplies(ctx, c, "Missing", []string{"a@b"}); err == nil || !strings.Contains(err.Error(), `"Missing"`) {
		t.Errorf("SearchReplies in a missing mailbox: err = %v, want one naming it", err)
	}

	own := "followupd.7.1.abc@example.com"
	found, err := FindMessageID(ctx, c, "Sent", own)
	must(err)
	if found {
		t.Fatal("FindMessageID found a message before it was appended")
	}
	raw := []byte("Message-ID: <" + own + ">\r\nSubject: Re: Offer\r\n\r\nreminder\r\n")
	date := time.Date(2026, 5, 6, 9, 30, 0, 0, time.UTC)
	must(Append(ctx, c, "Sent", raw, []string{`\Seen`}, date))
	found, err = FindMessageID(ctx, c, "Sent", "<"+own+">")
	must(err)
	if !found {
		t.Error("FindMessageID did not find the appended message")
	}
	msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{Flags: true, InternalDate: true}).Collect()
	must(err)
	if len(msgs) != 1 || !slices.Contains(msgs[0].Flags, imap.FlagSeen) || !msgs[0].InternalDate.Equal(date) {
		t.Errorf("appended message = %+v, want \\Seen and date %v", msgs, date)
	}
	if err := Append(ctx, c, "Nope", raw, nil, time.Time{}); err == nil {
		t.Error("Append to a missing mailbox succeeded")
	}
}

func TestHelpersCloseOnCancel(t *testing.T) {
	_, acct := setup(t, "Sent")
	c, err := Dial(context.Background(), acct, testPass, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SearchReplies(ctx, c, "INBOX", []string{"a@b"}); err == nil {
		t.Error("SearchReplies with a cancelled ctx succeeded")
	}
	select {
	case <-c.Closed():
	case <-time.After(2 * time.Second):
		t.Error("client not closed after ctx ended")
	}
}

func TestDialLoginFailureAndTraceWithoutPassword(t *testing.T) {
	_, acct := setup(t)
	var trace bytes.Buffer
	_, err := Dial(context.Background(), acct, "wrong-password", DialOptions{DebugWriter: &trace})
	if err == nil || !strings.Contains(err.Error(), "login as") {
		t.Fatalf("Dial with a wrong password: err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("error shows the password: %v", err)
	}
	trace.Reset()
	c, err := Dial(context.Background(), acct, testPass, DialOptions{DebugWriter: &trace})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if strings.Contains(trace.String(), testPass) {
		t.Errorf("trace shows the password:\n%s", trace.String())
	}
	if !strings.Contains(trace.String(), "SELECT") {
		t.Errorf("trace lacks the commands after login:\n%s", trace.String())
	}
}

// startTLSServer serves imapmemserver over implicit TLS with a fresh
// self-signed certificate for 127.0.0.1, and returns the CA file.
func startTLSServer(t *testing.T) (addr string, caFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imaptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(testUser, testPass)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:   imap.CapSet{imap.CapIMAP4rev1: {}},
		Logger: quietLogger{},
	})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), caFile
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

func TestDialTLS(t *testing.T) {
	addr, caFile := startTLSServer(t)
	host, port, _ := net.SplitHostPort(addr)
	p, _ := net.LookupPort("tcp", port)
	acct := &config.Account{Name: "a", Address: testUser, IMAP: config.Server{Host: host, Port: p, Security: config.SecurityTLS}}

	_, err := Dial(context.Background(), acct, testPass, DialOptions{Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "unknown authority: set imap.ca_file") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Dial without the CA: err = %v, want the unknown-authority hint naming %s", err, addr)
	}

	acct.IMAP.CAFile = caFile
	c, err := Dial(context.Background(), acct, testPass, DialOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Dial with imap.ca_file: %v", err)
	}
	c.Close()

	acct.IMAP.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := Dial(context.Background(), acct, testPass, DialOptions{}); err == nil || !strings.Contains(err.Error(), "imap.ca_file") {
		t.Errorf("Dial with a missing CA file: err = %v", err)
	}

	// Plain text against a TLS port, and TLS against a plain port.
	acct.IMAP.CAFile = caFile
	_, pacct := setup(t)
	pacct.IMAP.Security = config.SecurityTLS
	if _, err := Dial(context.Background(), pacct, testPass, DialOptions{Timeout: 5 * time.Second}); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("TLS to a plain-text port: err = %v", err)
	}
}

func TestDialCancelled(t *testing.T) {
	_, acct := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(ctx, acct, testPass, DialOptions{}); err == nil {
		t.Fatal("Dial with a cancelled ctx succeeded")
	}
}

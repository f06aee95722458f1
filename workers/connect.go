package workers

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnOptions are the ways to reach and authenticate to a NATS server. The
// secrets in it are never logged or put in an error: use Redact for URLs.
type ConnOptions struct {
	URL      string
	Name     string
	User     string
	Password string
	Token    string
	NKeyFile string // a file holding an nkey seed (SU...)
	Creds    string // a .creds file (JWT + nkey seed)
	TLSCA    string
	TLSCert  string
	TLSKey   string
}

// Redact returns u with any password or token in its user information
// replaced by "xxxxx", for logs and error messages.
func Redact(u string) string {
	var out []string
	for _, one := range strings.Split(u, ",") {
		p, err := url.Parse(strings.TrimSpace(one))
		if err != nil || p.User == nil {
			if err != nil && strings.Contains(one, "@") {
				out = append(out, "<unparseable url>")
				continue
			}
			out = append(out, one)
			continue
		}
		if _, has := p.User.Password(); has {
			p.User = url.UserPassword(p.User.Username(), "xxxxx")
		} else {
			p.User = url.User("xxxxx")
		}
		out = append(out, p.String())
	}
	return strings.Join(out, ",")
}

// Connect opens a NATS connection that reconnects for ever: a worker rides
// out a server restart and carries on. The error never contains a secret.
func Connect(o ConnOptions) (*nats.Conn, error) {
	if o.URL == "" {
		o.URL = nats.DefaultURL
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.Timeout(5 * time.Second),
	}
	if o.User != "" || o.Password != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("workers: reading nkey seed file %s: %w", o.NKeyFile, err)
		}
		opts = append(opts, opt)
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		if o.TLSCert == "" || o.TLSKey == "" {
			return nil, fmt.Errorf("workers: --tls-cert and --tls-key go together")
		}
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		// The nats error text does not include the URL, but be explicit
		// about which (redacted) server was meant.
		return nil, fmt.Errorf("workers: connecting to %s: %w", Redact(o.URL), err)
	}
	return nc, nil
}

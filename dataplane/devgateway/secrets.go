package devgateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/kgate/kgate/dataplane/xdsclient"
)

// What a client can make the gateway subscribe to. The SNI is the
// client's to choose, and each name a handshake asks for is an SDS
// subscription on the gateway's stream and an answer from the control
// plane; Envoy sets no bound of its own.
const (
	// DefaultMaxSecrets bounds the secret names held (subscribed to) at
	// once, certificates and names the control plane said it does not
	// have alike. A new name beyond it evicts the least recently used
	// name no handshake waits for, names without a certificate first.
	// kgate's control plane takes 100,000 names per stream.
	DefaultMaxSecrets = 1024
	// DefaultNewSecretsPerMinute bounds the names not held yet that
	// handshakes may subscribe to: a bucket of as many, refilled at that
	// rate. A handshake past it fails without asking the control plane.
	DefaultNewSecretsPerMinute = 120
	// maxSecretName is the longest DNS name, and so the longest SNI a
	// certificate can be named by.
	maxSecretName = 253
)

// subscriber is the Secret watch: an xdsclient.Watch.
type subscriber interface {
	Subscribe(names ...string)
	Unsubscribe(names ...string)
}

// certStore holds the certificates the TLS listeners serve: SDS secrets
// fetched on demand, by name, the first time a handshake asks for one, and
// followed afterwards. Each secret version is parsed once, when it
// arrives: handshakes share the parsed certificate, and a rotation makes
// the next handshakes take the new one while open connections keep
// theirs. A name the control plane says it does not have fails its
// handshakes at once; it stays subscribed while held, so that its
// certificate serves as soon as it comes, as a new subscription of
// Envoy's would get it. Only names are ever logged.
type certStore struct {
	sub subscriber
	log *slog.Logger
	now func() time.Time
	// maxNames and perMinute are Options.MaxSecrets and
	// Options.NewSecretsPerMinute with their defaults.
	maxNames  int
	perMinute float64

	mu      sync.Mutex
	entries map[string]*certEntry
	// tokens is what the new-name bucket holds, as of refilled.
	tokens   float64
	refilled time.Time
}

// certEntry is one secret name subscribed to.
type certEntry struct {
	// cert is the secret's parsed certificate, nil while none: before the
	// first answer, or when the control plane does not have the secret.
	cert    *tls.Certificate
	version string
	// answered is closed once the control plane has answered for the
	// name, with a secret or without.
	answered chan struct{}
	// waiters counts the handshakes waiting for the first answer: an
	// entry waited for is never evicted.
	waiters  int
	lastUsed time.Time
}

func (e *certEntry) isAnswered() bool {
	select {
	case <-e.answered:
		return true
	default:
		return false
	}
}

// newCertStore returns a store holding up to maxNames names and taking
// perMinute new ones a minute; 0 means the defaults. Its subscriber is set
// before it serves.
func newCertStore(log *slog.Logger, maxNames, perMinute int) *certStore {
	if maxNames <= 0 {
		maxNames = DefaultMaxSecrets
	}
	if perMinute <= 0 {
		perMinute = DefaultNewSecretsPerMinute
	}
	s := &certStore{
		log: log, now: time.Now,
		maxNames: maxNames, perMinute: float64(perMinute),
		entries: map[string]*certEntry{},
	}
	s.tokens, s.refilled = s.perMinute, s.now()
	return s
}

// Errors a handshake fails with; the client sees a TLS alert.
var (
	errNoSecret       = errors.New("the control plane has no certificate of that name")
	errSecretTimeout  = errors.New("no answer from the control plane in time")
	errBadSecretName  = errors.New("not a certificate name")
	errTooManySecrets = errors.New("too many certificate names asked for")
)

// certificate returns the certificate of the secret name, subscribing to
// it if no handshake asked for it before, and waiting up to wait (or
// until ctx ends) for the control plane's first answer.
func (s *certStore) certificate(ctx context.Context, name string, wait time.Duration) (*tls.Certificate, error) {
	s.mu.Lock()
	e, err := s.entryLocked(name, true)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("certificate %q: %w", name, err)
	}
	e.lastUsed = s.now()
	if !e.isAnswered() {
		e.waiters++
		s.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-e.answered:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		s.mu.Lock()
		e.waiters--
	}
	defer s.mu.Unlock()
	switch {
	case e.cert != nil:
		return e.cert, nil
	case e.isAnswered():
		return nil, fmt.Errorf("certificate %q: %w", name, errNoSecret)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("certificate %q: %w", name, ctx.Err())
	}
	return nil, fmt.Errorf("certificate %q: %w after %v", name, errSecretTimeout, wait)
}

// prefetch subscribes to names ahead of any handshake
// (prefetch_secret_names): they count against the names held, not against
// the new names a minute.
func (s *certStore) prefetch(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range names {
		if e, err := s.entryLocked(name, false); err == nil {
			e.lastUsed = s.now()
		} else {
			s.log.Warn("not prefetching a TLS certificate", "secret", name, "error", err)
		}
	}
}

// forget lets go of every name no handshake waits for.
func (s *certStore) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, e := range s.entries {
		if e.waiters == 0 {
			delete(s.entries, name)
			s.sub.Unsubscribe(name)
		}
	}
}

// entryLocked returns the entry of name, subscribing to it when there is
// none, within the bounds; limited says whether the new name takes a
// token from the bucket. s.mu is held.
func (s *certStore) entryLocked(name string, limited bool) (*certEntry, error) {
	if e, ok := s.entries[name]; ok {
		return e, nil
	}
	if !validSecretName(name) {
		return nil, errBadSecretName
	}
	if limited && !s.takeTokenLocked() {
		return nil, fmt.Errorf("%w: more than %v new names a minute", errTooManySecrets, s.perMinute)
	}
	for len(s.entries) >= s.maxNames {
		if !s.evictLocked() {
			return nil, fmt.Errorf("%w: %d held, each waited for", errTooManySecrets, len(s.entries))
		}
	}
	e := &certEntry{answered: make(chan struct{})}
	s.entries[name] = e
	// Under s.mu, so that subscriptions and evictions of one name reach
	// the watch in the order they were decided. The watch never calls
	// back into the store while it holds its own lock.
	s.sub.Subscribe(name)
	return e, nil
}

// takeTokenLocked takes a token from the new-name bucket, if it has one.
func (s *certStore) takeTokenLocked() bool {
	now := s.now()
	s.tokens = min(s.perMinute, s.tokens+now.Sub(s.refilled).Minutes()*s.perMinute)
	s.refilled = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

// evictLocked unsubscribes the name to let go of first: of those no
// handshake waits for, one without a certificate before one with, the
// least recently used first. It reports whether there was one.
func (s *certStore) evictLocked() bool {
	var victim string
	var ve *certEntry
	for name, e := range s.entries {
		if e.waiters == 0 && (ve == nil || evictsBefore(e, ve)) {
			victim, ve = name, e
		}
	}
	if ve == nil {
		return false
	}
	delete(s.entries, victim)
	s.sub.Unsubscribe(victim)
	return true
}

// evictsBefore reports whether a goes before b: a name without a
// certificate before one with, then the least recently used.
func evictsBefore(a, b *certEntry) bool {
	if (a.cert == nil) != (b.cert == nil) {
		return a.cert == nil
	}
	return a.lastUsed.Before(b.lastUsed)
}

// validSecretName reports whether name can name a certificate: a DNS name
// (letters, digits, "-", "_", "." and the "*" of a wildcard), which every
// secret kgate serves is. Any other SNI fails its handshake without a
// subscription, as it would once the control plane had answered.
func validSecretName(name string) bool {
	if name == "" || len(name) > maxSecretName {
		return false
	}
	for i := range len(name) {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '*':
		default:
			return false
		}
	}
	return true
}

// apply applies an SDS update: every secret is parsed before any is
// served, so that one that cannot be refuses the update whole (a NACK,
// as Envoy refuses a secret it cannot load), and a version already held
// is not parsed again.
func (s *certStore) apply(u xdsclient.Update) error {
	type parsed struct {
		name, version string
		cert          *tls.Certificate
	}
	s.mu.Lock()
	held := map[string]*certEntry{}
	for _, r := range u.Resources {
		if e, ok := s.entries[r.Name]; ok && e.cert != nil && e.version == r.Version {
			held[r.Name] = e
		}
	}
	s.mu.Unlock()
	updates := make([]parsed, 0, len(u.Resources))
	for _, r := range u.Resources {
		if e, ok := held[r.Name]; ok {
			updates = append(updates, parsed{r.Name, r.Version, e.cert})
			continue
		}
		secret, ok := r.Message.(*tlsv3.Secret)
		if !ok {
			return fmt.Errorf("resource %s: got a %T", r.Name, r.Message)
		}
		cert, err := compileSecret(secret)
		if err != nil {
			return fmt.Errorf("Secret %s: %w", r.Name, err)
		}
		updates = append(updates, parsed{r.Name, r.Version, cert})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range updates {
		e, ok := s.entries[p.name]
		if !ok {
			continue // evicted since: unsubscribed
		}
		if e.version != p.version {
			s.log.Info("TLS certificate received", "secret", p.name, "version", p.version)
		}
		e.cert, e.version = p.cert, p.version
		s.answerLocked(e)
	}
	for _, names := range [][]string{u.Removed, u.Absent} {
		for _, name := range names {
			e, ok := s.entries[name]
			if !ok {
				continue
			}
			if e.cert != nil {
				s.log.Info("TLS certificate removed", "secret", name)
			} else {
				s.log.Debug("no TLS certificate of that name", "secret", name)
			}
			e.cert, e.version = nil, ""
			s.answerLocked(e)
		}
	}
	return nil
}

func (s *certStore) answerLocked(e *certEntry) {
	if !e.isAnswered() {
		close(e.answered)
	}
}

// compileSecret parses a TLS certificate secret: a PEM chain and key,
// inline. The error never quotes the key.
func compileSecret(s *tlsv3.Secret) (*tls.Certificate, error) {
	if err := onlyFields(s, "name", "tls_certificate"); err != nil {
		return nil, err
	}
	tc := s.GetTlsCertificate()
	if tc == nil {
		return nil, errors.New("not a TLS certificate: the dev gateway serves tls_certificate secrets only")
	}
	if err := onlyFields(tc, "certificate_chain", "private_key"); err != nil {
		return nil, err
	}
	chain, err := inlineData(tc.GetCertificateChain())
	if err != nil {
		return nil, fmt.Errorf("certificate_chain: %w", err)
	}
	key, err := inlineData(tc.GetPrivateKey())
	if err != nil {
		return nil, fmt.Errorf("private_key: %w", err)
	}
	// crypto/tls's errors name what is wrong, never the bytes.
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return nil, fmt.Errorf("reading the certificate and key: %w", err)
	}
	return &cert, nil
}

// inlineData reads a DataSource given inline; files and environment
// variables would be the gateway's host's, not what the control plane
// means.
func inlineData(ds *corev3.DataSource) ([]byte, error) {
	if err := onlyFields(ds, "inline_bytes", "inline_string"); err != nil {
		return nil, err
	}
	if b := ds.GetInlineBytes(); len(b) > 0 {
		return b, nil
	}
	if s := ds.GetInlineString(); s != "" {
		return []byte(s), nil
	}
	return nil, errors.New("empty")
}

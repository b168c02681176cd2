package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// serverTLS wraps ln in TLS with the certificate and key files, or returns
// ln as it is when neither is given. The files are read again when they
// change (checked at most every 10 s), so a renewed certificate needs no
// restart.
func serverTLS(ln net.Listener, certFile, keyFile string) (net.Listener, error) {
	if certFile == "" && keyFile == "" {
		return ln, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	kp := &keyPair{cert: certFile, key: keyFile}
	if err := kp.load(); err != nil {
		return nil, err
	}
	return tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get}), nil
}

// keyPair is a certificate reloaded when its files change.
type keyPair struct {
	cert, key string
	mu        sync.Mutex
	current   *tls.Certificate
	mtime     time.Time // of the files last loaded (the later of the two)
	checked   time.Time
}

func (k *keyPair) load() error {
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	k.current, k.mtime = &c, k.modified()
	return nil
}

func (k *keyPair) modified() time.Time {
	var last time.Time
	for _, f := range []string{k.cert, k.key} {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	return last
}

func (k *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.checked) > 10*time.Second {
		k.checked = time.Now()
		if m := k.modified(); m.After(k.mtime) {
			// A half-written pair fails to load: keep serving the old one.
			_ = k.load()
		}
	}
	return k.current, nil
}

// clientTransport is an HTTP transport that also trusts the PEM
// certificates of caFile (a private CA, a self-signed server), when given.
func clientTransport(caFile string, headerTimeout time.Duration) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = headerTimeout
	if caFile == "" {
		return tr, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", caFile)
	}
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	return tr, nil
}

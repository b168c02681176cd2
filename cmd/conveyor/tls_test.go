package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a self-signed certificate named cn and its key.
func selfSigned(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestServerTLSFlags(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "one")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got, err := serverTLS(ln, "", ""); err != nil || got != ln {
		t.Errorf("no TLS flags: %v, %v", got, err)
	}
	if _, err := serverTLS(ln, cert, ""); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("--tls-cert alone: %v", err)
	}
	if _, err := serverTLS(ln, cert, cert); err == nil {
		t.Error("a certificate as its own key was accepted")
	}

	kp := &keyPair{cert: cert, key: key}
	if err := kp.load(); err != nil {
		t.Fatal(err)
	}
	cn := func() string {
		c, err := kp.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if got := cn(); got != "one" {
		t.Fatalf("served %q", got)
	}
	// A renewed pair is served once the files change (no restart).
	selfSigned(t, dir, "two")
	later := time.Now().Add(time.Minute)
	for _, f := range []string{cert, key} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	kp.checked = time.Time{}
	if got := cn(); got != "two" {
		t.Errorf("after renewal served %q, want two", got)
	}
	// A broken file keeps the last good pair.
	if err := os.WriteFile(key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	later = later.Add(time.Minute)
	_ = os.Chtimes(key, later, later)
	kp.checked = time.Time{}
	if got := cn(); got != "two" {
		t.Errorf("after a broken key file served %q, want the last good pair", got)
	}
}

func TestClientTransportCAFile(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "ca")
	if tr, err := clientTransport("", time.Second); err != nil || tr.TLSClientConfig != nil && tr.TLSClientConfig.RootCAs != nil {
		t.Errorf("no CA file: %v", err)
	}
	tr, err := clientTransport(cert, time.Second)
	if err != nil || tr.TLSClientConfig == nil || tr.TLSClientConfig.RootCAs == nil || tr.ResponseHeaderTimeout != time.Second {
		t.Errorf("CA file: %+v, %v", tr, err)
	}
	if _, err := clientTransport(key, time.Second); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a key as CA file: %v", err)
	}
	if _, err := clientTransport(filepath.Join(dir, "missing.pem"), time.Second); err == nil {
		t.Error("a missing CA file was accepted")
	}
}

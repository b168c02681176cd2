package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a private certificate authority and one server certificate
// it signed for 127.0.0.1, made once per test binary. httpClient trusts
// it, so tests reach a server started with --tls-cert like any other.
type testCA struct {
	caPEM, certPEM, keyPEM []byte
	pool                   *x509.CertPool
}

var e2eCA = newTestCA()

func newTestCA() *testCA {
	must := func(err error) {
		if err != nil {
			panic("e2e: making the test CA: " + err.Error())
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "conveyor e2e CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	caCert, err := x509.ParseCertificate(caDER)
	must(err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	must(err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	must(err)
	ca := &testCA{
		caPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		pool:    x509.NewCertPool(),
	}
	ca.pool.AddCert(caCert)
	return ca
}

func (ca *testCA) transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.pool}
	return tr
}

// write puts ca.pem, cert.pem and key.pem in dir and returns their paths.
func (ca *testCA) write(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string][]byte{caFile: ca.caPEM, certFile: ca.certPEM, keyFile: ca.keyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// TestTLS runs the server with --tls-cert/--tls-key (a certificate of a
// private CA): plain HTTP on its port is refused; the CLI and an agent
// that do not trust the CA fail with a certificate error and send
// nothing; with --ca-file / CONVEYOR_CA_FILE they work, and an agent
// runs a job over HTTPS end to end.
func TestTLS(t *testing.T) {
	skipShort(t)
	t.Parallel()
	tmp := t.TempDir()
	caFile, certFile, keyFile := e2eCA.write(t, tmp)
	const secret = "tls-secret"
	g := newGitRepo(t, map[string]string{".github/workflows/tls.yml": "on: push\njobs:\n  secure:\n    runs-on: [self-hosted, tls]\n    steps:\n      - run: echo over-tls-$((6*7))\n"})
	s := startServer(t, "server", filepath.Join(tmp, "server"), true, "--workers", "0", "--poll", "100ms",
		"--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.url, "https://127.0.0.1:") {
		t.Fatalf("server URL %q: want https://127.0.0.1:PORT", s.url)
	}
	plain := "http://" + strings.TrimPrefix(s.url, "https://")
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(plain + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: %d, want 400", resp.StatusCode)
		}
	}
	c := client{t: t, url: s.url, token: s.token}
	repoID := c.addRepo(g.dir, secret)

	cli := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(binary, append(args, "--server", s.url, "--token", s.token)...)
		cmd.Env = append(cleanEnv(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := cli(nil, "repo", "list"); err == nil || !strings.Contains(out, "certificate signed by unknown authority") {
		t.Errorf("repo list without the CA: %v\n%s", err, out)
	}
	if out, err := cli(nil, "repo", "list", "--ca-file", caFile); err != nil || !strings.Contains(out, "octo/repo") {
		t.Errorf("repo list --ca-file: %v\n%s", err, out)
	}
	if out, err := cli([]string{"CONVEYOR_CA_FILE=" + caFile}, "repo", "list"); err != nil || !strings.Contains(out, "octo/repo") {
		t.Errorf("repo list with CONVEYOR_CA_FILE: %v\n%s", err, out)
	}
	if out, err := cli(nil, "repo", "list", "--ca-file", keyFile); err == nil || !strings.Contains(out, "no PEM certificate") {
		t.Errorf("repo list --ca-file KEY: %v\n%s", err, out)
	}

	_, tok := createAgentAPI(t, c, "tls-agent", "tls")
	agentArgs := []string{"agent", "--server", s.url, "--backend", "host", "--labels", "tls", "--log-level", "debug"}
	untrusting := startProc(t, "agent-no-ca", []string{"CONVEYOR_AGENT_TOKEN=" + tok}, append(agentArgs, "--data", filepath.Join(tmp, "a0"))...)
	waitFor(t, 20*time.Second, "the agent without the CA to fail its registration", func() bool {
		return strings.Contains(untrusting.stderr(), "certificate signed by unknown authority")
	}, untrusting.stderr)
	if strings.Contains(untrusting.stderr(), `msg="agent registered"`) {
		t.Fatalf("an agent that does not trust the server's CA registered:\n%s", untrusting.stderr())
	}
	untrusting.kill9()

	a := startProc(t, "agent", []string{"CONVEYOR_AGENT_TOKEN=" + tok, "CONVEYOR_CA_FILE=" + caFile}, append(agentArgs, "--data", filepath.Join(tmp, "a1"))...)
	waitFor(t, 20*time.Second, "agent registered over TLS", func() bool {
		return strings.Contains(a.stderr(), `msg="agent registered"`)
	}, a.stderr)
	sha := g.commit("over tls", map[string]string{"n.txt": "1"})
	if code, body, err := hook(s.url, repoID, secret, "push", "tls-1", pushBody(g.dir, "main", sha, "over tls")); err != nil || code != http.StatusAccepted {
		t.Fatalf("webhook over TLS: %d %s %v", code, body, err)
	}
	runs := c.waitRuns(1, 60*time.Second)
	if runs[0].Status != "success" {
		t.Fatalf("run over TLS: %+v", runs[0])
	}
	if l := c.text(fmt.Sprintf("/api/runs/%d/jobs/secure/logs", runs[0].ID)); !strings.Contains(l, "over-tls-42") {
		t.Errorf("job log lacks the step's output:\n%s", l)
	}
}

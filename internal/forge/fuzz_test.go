package forge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// seedDir is the compat folder of a forge's payloads, for seeds; fuzzing
// runs without it, so unlike testenv.CompatDir it never skips.
func seedDir(forgeName string) string {
	root := os.Getenv(testenv.EnvCompatDir)
	if root == "" {
		root = filepath.Join("..", "..", "..", "shared", "compat")
	}
	return filepath.Join(root, "webhooks", forgeName)
}

var inlineSeeds = []string{
	`{}`, `null`, `[]`, `"x"`, `{"ref":1}`, `{"ref":"refs/heads/x","commits":[null,1,{"added":[1,null]}]}`,
	`{"pull_request":{"number":"7","head":[],"base":null}}`, `{"pull_request":{"number":1e300}}`,
	`{"object_attributes":{"iid":-1,"last_commit":"x"},"project":[]}`, `{"inputs":{"a":[1,{"b":null}]}}`,
	`{"total_commits_count":-5,"commits":[{"added":["a"]}],"ref":"r"}`,
}

func fuzzParse(f *testing.F, forgeName string, header func(string) http.Header, events []string) {
	files, _ := filepath.Glob(filepath.Join(seedDir(forgeName), "*.json"))
	more, _ := filepath.Glob(filepath.Join(seedDir(forgeName), "*", "*.json"))
	for _, file := range append(files, more...) {
		if body, err := os.ReadFile(file); err == nil {
			name := filepath.Base(filepath.Dir(file))
			if c, ok := compatTable(forgeName)[filepath.Base(file)]; ok && forgeName != "github" {
				name = c.header
			}
			f.Add(name, body)
		}
	}
	for _, ev := range events {
		for _, body := range inlineSeeds {
			f.Add(ev, []byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		ev, err := Parse(forgeName, header(name), body)
		if err != nil {
			if ev != nil || !errs.Is(err, errs.Invalid) {
				t.Fatalf("Parse = %v, %v; want nil and an Invalid error", ev, err)
			}
			return
		}
		if ev.Body == nil || strings.TrimSpace(ev.Name) == "" || ev.Forge != forgeName {
			t.Fatalf("incomplete event %+v", ev)
		}
		if _, err := json.Marshal(GitHubPayload(ev)); err != nil {
			t.Fatalf("GitHubPayload does not marshal: %v", err)
		}
	})
}

func FuzzParseGitHub(f *testing.F) {
	fuzzParse(f, "github", func(n string) http.Header { return hdr("X-GitHub-Event", n) },
		[]string{"push", "pull_request", "create", "delete", "release", "workflow_dispatch", "ping", "issues"})
}

func FuzzParseGitLab(f *testing.F) {
	fuzzParse(f, "gitlab", func(n string) http.Header { return hdr("X-Gitlab-Event", n) },
		[]string{"Push Hook", "Tag Push Hook", "Merge Request Hook", "Release Hook", "System Hook", "Note Hook", "Issue Hook", "X Hook"})
}

func FuzzParseGitea(f *testing.F) {
	// The event goes in X-Gitea-Event, or X-Gitea-Event-Type when prefixed with "type:".
	header := func(n string) http.Header {
		if t, ok := strings.CutPrefix(n, "type:"); ok {
			return hdr("X-Gitea-Event-Type", t)
		}
		return hdr("X-Gitea-Event", n)
	}
	fuzzParse(f, "gitea", header, []string{"push", "pull_request", "create", "delete", "release",
		"issues", "pull_request_comment", "type:pull_request_comment", "type:pull_request_sync"})
}

// FuzzVerify checks that Verify never panics, rejects what it must, and
// accepts a correct signature for any secret and body.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(vecSecret), []byte(vecBody), "sha256="+vecSig)
	f.Add([]byte("s"), []byte(""), "sha1=00")
	f.Add([]byte(""), []byte("b"), "")
	f.Add([]byte("s"), []byte("{}"), "sha256=")
	f.Fuzz(func(t *testing.T, secret, body []byte, sig string) {
		for _, forgeName := range []string{"github", "gitea", "gitlab"} {
			h := hdr("X-Hub-Signature-256", sig, "X-Hub-Signature", sig, "X-Gitea-Signature", sig, "X-Gitlab-Token", sig)
			err := Verify(forgeName, secret, h, body, VerifyOptions{AllowSHA1: true})
			if len(secret) == 0 && !errs.Is(err, errs.Invalid) {
				t.Fatalf("%s: empty secret gave %v", forgeName, err)
			}
			if err != nil && !errs.Is(err, errs.Invalid) && !errs.Is(err, errs.Unauthorized) {
				t.Fatalf("%s: error of kind %v: %v", forgeName, errs.KindOf(err), err)
			}
		}
		if len(secret) == 0 {
			return
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		good := hex.EncodeToString(mac.Sum(nil))
		if err := Verify("github", secret, hdr("X-Hub-Signature-256", "sha256="+good), body, VerifyOptions{}); err != nil {
			t.Fatalf("github rejects a correct signature: %v", err)
		}
		if err := Verify("gitea", secret, hdr("X-Gitea-Signature", good), body, VerifyOptions{}); err != nil {
			t.Fatalf("gitea rejects a correct signature: %v", err)
		}
		if hexSig, ok := strings.CutPrefix(strings.TrimSpace(sig), "sha256="); ok {
			if b, err := hex.DecodeString(hexSig); err == nil && hmac.Equal(b, mac.Sum(nil)) {
				return // sig is the correct signature, in another spelling
			}
		}
		if Verify("github", secret, hdr("X-Hub-Signature-256", sig), body, VerifyOptions{}) == nil {
			t.Fatalf("github accepts a wrong signature %q", sig)
		}
	})
}

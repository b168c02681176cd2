package forge

import "testing"

func TestDefaultAPIURL(t *testing.T) {
	for _, tc := range []struct{ forge, repo, want string }{
		{"github", "", "https://api.github.com"},
		{"github", "https://github.com/o/r.git", "https://api.github.com"},
		{"github", "git@github.com:o/r.git", "https://api.github.com"},
		{"github", "https://ghe.corp.example/o/r", "https://ghe.corp.example/api/v3"},
		{"gitlab", "", "https://gitlab.com/api/v4"},
		{"gitlab", "https://gitlab.com/g/sub/p.git", "https://gitlab.com/api/v4"},
		{"gitlab", "http://gitlab.lan:8080/g/p.git", "http://gitlab.lan:8080/api/v4"},
		{"gitea", "http://localhost:3000/example/example.git", "http://localhost:3000/api/v1"},
		{"gitea", "https://user:pw@Codeberg.org/o/r", "https://codeberg.org/api/v1"},
		{"forgejo", "ssh://git@codeberg.org:2222/o/r.git", "https://codeberg.org/api/v1"},
		{"gitea", "git@gitea.example:o/r.git", "https://gitea.example/api/v1"},
		{"gitea", "", ""},
		{"gitea", "not a url", ""},
		{"svn", "https://svn.example/r", ""},
	} {
		if got := DefaultAPIURL(tc.forge, tc.repo); got != tc.want {
			t.Errorf("DefaultAPIURL(%q, %q) = %q, want %q", tc.forge, tc.repo, got, tc.want)
		}
	}
}

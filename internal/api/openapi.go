package api

import (
	_ "embed"
	"encoding/json"
	"net/http"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// The OpenAPI 3 document is hand-written in five files (the agent, artifact,
// account, secret, quota, retention and environment routes apart) and served merged; TestOpenAPISync keeps it and the route table
// in step.
var (
	//go:embed openapi.json
	openapiBase []byte
	//go:embed openapi_agents.json
	openapiAgents []byte
	//go:embed openapi_artifacts.json
	openapiArtifacts []byte
	//go:embed openapi_accounts.json
	openapiAccounts []byte
	//go:embed openapi_secrets.json
	openapiSecrets []byte
	//go:embed openapi_quotas.json
	openapiQuotas []byte
	//go:embed openapi_retention.json
	openapiRetention []byte
	//go:embed openapi_environments.json
	openapiEnvironments []byte

	openapiDoc = mergeOpenAPI(mergeOpenAPI(mergeOpenAPI(mergeOpenAPI(mergeOpenAPI(mergeOpenAPI(mergeOpenAPI(openapiBase, openapiAgents), openapiArtifacts),
		openapiAccounts), openapiSecrets), openapiQuotas), openapiRetention), openapiEnvironments)
)

// mergeOpenAPI adds extra's paths, component schemas and parameters to
// base.
func mergeOpenAPI(base, extra []byte) []byte {
	var doc, add map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		panic("openapi document: " + err.Error())
	}
	if err := json.Unmarshal(extra, &add); err != nil {
		panic("openapi extra document: " + err.Error())
	}
	into := func(dst, src map[string]any, key string) {
		d, _ := dst[key].(map[string]any)
		s, _ := src[key].(map[string]any)
		for k, v := range s {
			d[k] = v
		}
	}
	into(doc, add, "paths")
	into(doc["components"].(map[string]any), add["components"].(map[string]any), "schemas")
	into(doc["components"].(map[string]any), add["components"].(map[string]any), "parameters")
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err)
	}
	return out
}

func (a *server) openapi(w http.ResponseWriter, _ *http.Request, _ *store.Token) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*") // public document, for API viewers
	_, _ = w.Write(openapiDoc)
}

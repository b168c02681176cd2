package api

import (
	_ "embed"
	"net/http"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// openapiDoc is the hand-written OpenAPI 3 document; TestOpenAPISync keeps
// it and the route table in step.
//
//go:embed openapi.json
var openapiDoc []byte

func (a *server) openapi(w http.ResponseWriter, _ *http.Request, _ *store.Token) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*") // public document, for API viewers
	_, _ = w.Write(openapiDoc)
}

package samples

import (
	"fmt"
	"net/http"
)

// DefaultTarget is whom helloworld greets when TARGET is empty.
const DefaultTarget = "World"

// Helloworld is Knative's helloworld-go: every request is answered
// "Hello {target}!"; an empty target is DefaultTarget.
func Helloworld(target string) http.Handler {
	if target == "" {
		target = DefaultTarget
	}
	body := fmt.Sprintf("Hello %s!\n", target)
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, body)
	})
}

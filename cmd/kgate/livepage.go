package main

import (
	"net/http"

	"github.com/kgate/kgate/dashboard"
)

// newLivePage is kgate local's live page (package dashboard) over the
// objects the admin API serves and the requests reqs counts.
func newLivePage(snapshot func() objects, reqs *dashboard.Requests) *dashboard.Page {
	return dashboard.New(dashboard.Options{
		Objects: func() dashboard.Objects {
			o := snapshot()
			return dashboard.Objects{Services: o.Services, Revisions: o.Revisions}
		},
		Requests: reqs.Take,
	})
}

// withLivePage serves page at / and under /ui/, and the rest from admin.
func withLivePage(admin, page http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/{$}", page)
	mux.Handle("/ui", page)
	mux.Handle("/ui/", page)
	mux.Handle("/", admin)
	return mux
}

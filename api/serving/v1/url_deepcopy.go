package v1

// DeepCopyInto copies u into out. URL is written by hand: it is a
// net/url.URL, whose User field points to a Userinfo with unexported fields
// that controller-gen cannot copy. A Userinfo is immutable once built, so
// sharing the pointer is a deep copy in effect (as Knative's apis.URL does).
func (u *URL) DeepCopyInto(out *URL) {
	*out = *u
}

// DeepCopy returns a copy of u, or nil for nil.
func (u *URL) DeepCopy() *URL {
	if u == nil {
		return nil
	}
	out := new(URL)
	u.DeepCopyInto(out)
	return out
}

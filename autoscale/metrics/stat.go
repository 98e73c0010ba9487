package metrics

import "github.com/kgate/kgate/translator/model"

func plus(s, o model.Stat) model.Stat {
	return model.Stat{Concurrency: s.Concurrency + o.Concurrency, Requests: s.Requests + o.Requests}
}

func minus(s, o model.Stat) model.Stat {
	return model.Stat{Concurrency: s.Concurrency - o.Concurrency, Requests: s.Requests - o.Requests}
}

func times(s model.Stat, f float64) model.Stat {
	return model.Stat{Concurrency: s.Concurrency * f, Requests: s.Requests * f}
}

package notifiers

import "github.com/klaxonhq/klaxon/egress"

// localSinks is the guard of tests that post to httptest servers on this
// machine: loopback admitted, as KLAXON_OUTBOUND_ALLOW=127.0.0.1/32,::1/128
// would.
var localSinks = func() *egress.Guard {
	allow, err := egress.ParseAllow("127.0.0.1/32,::1/128")
	if err != nil {
		panic(err)
	}
	return egress.New(allow, nil)
}()

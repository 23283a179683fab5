package auth

import "golang.org/x/crypto/bcrypt"

// DummyHashCost is the bcrypt cost of the hash a login for an unknown
// email is checked against, or an error when there is none.
func (s *Service) DummyHashCost() (int, error) {
	return bcrypt.Cost(s.dummyHash)
}

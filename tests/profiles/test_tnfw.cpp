// Placeholder: tests arrive with the profile.

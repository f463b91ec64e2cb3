// Must not compile: io/fits.hpp without lensing::fits linked.
#include <lensing/io/fits.hpp>

int main() { return 0; }

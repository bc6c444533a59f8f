"""Import of ONDE extractions (« Élèves » and « Responsables ») into the account registry."""

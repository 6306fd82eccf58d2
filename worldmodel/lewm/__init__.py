"""LeWorldModel: an end-to-end JEPA world model from pixels (encoder + predictor trained together with SIGReg)."""

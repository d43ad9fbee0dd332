import FastWeights
print(BLASCore.name)

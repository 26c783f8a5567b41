// Hardhat's node (EDR) as a second EVM implementation for the integration tests: the same chain id
// and hardfork as the embedded anvil, so the committed registry bytecode runs unchanged.
module.exports = {
  networks: {
    hardhat: { chainId: 31337, hardfork: "prague", mining: { auto: true } },
  },
};

// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";

/// @title OzErc721MintHarness
/// @notice Benchmark only: OpenZeppelin's ERC721 with its internal `_mint` exposed, to compare the
/// registry's gas per lot with one NFT per lot. No access control: never deploy it anywhere that matters.
contract OzErc721MintHarness is ERC721 {
    constructor() ERC721("Ore lot", "LOT") {}

    /// @notice Mints token `id` to `to` (OpenZeppelin `_mint`: no receiver check).
    function mint(address to, uint256 id) external {
        _mint(to, id);
    }
}

/// @title OzErc1155MintHarness
/// @notice Benchmark only: OpenZeppelin's ERC1155 with its internal `_mintBatch` exposed, to compare
/// the registry's batch registration with one fungible id per lot, its amount the lot's mass.
contract OzErc1155MintHarness is ERC1155 {
    constructor() ERC1155("") {}

    /// @notice Mints `amounts[i]` of id `ids[i]` to `to`, with empty data (OpenZeppelin `_mintBatch`).
    function mintBatch(address to, uint256[] calldata ids, uint256[] calldata amounts) external {
        _mintBatch(to, ids, amounts, "");
    }
}
